// What jemalloc's heap profiler costs a busy service: throughput and p99 latency of the HTTP
// service of bench/http.mjs (JSON in, gzip out) under jemalloc without profiling, with profiling
// active at the default period (512 KiB, lg_prof_sample:19), and with a heapProfile() every
// PROFILE_EVERY_MS on top. Rounds alternate the configurations so the machine's drift hits all
// alike. Prints medians and ratios to the run without profiling, and what each heapProfile() took.
//
// Then heapProfile() alone, in a process that serves nothing.
//
//   node bench/profile-overhead.mjs   (RUNS=5, DURATION=8 seconds, CONNECTIONS=32, PROFILE_EVERY_MS=2000)
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { driveJsonService, median, require, table } from './common.mjs';

const { findLibrary } = require('../dist/read/libraries');
const RUNS = Number(process.env.RUNS || 5);
const DURATION = Number(process.env.DURATION || 8);
const CONNECTIONS = Number(process.env.CONNECTIONS || 32);
const EVERY = Number(process.env.PROFILE_EVERY_MS || 2000);
const service = fileURLToPath(new URL('./profile-service.cjs', import.meta.url));
const jemalloc = findLibrary('jemalloc');
if (!jemalloc) throw new Error('libjemalloc.so.2 not found (Debian: apt-get install libjemalloc2)');
const dir = mkdtempSync(path.join(os.tmpdir(), 'fragstat-bench-'));

let n = 0;
async function once(env) {
  const log = path.join(dir, `profile-${n++}.ndjson`);
  const args =
    env.JS_FRAMES === '1'
      ? ['--perf-basic-prof', '--no-logfile-per-isolate', '--logfile=+', service]
      : [service];
  const r = await driveJsonService(
    args,
    { LD_PRELOAD: jemalloc, PROFILE_LOG: log, ...env },
    { connections: CONNECTIONS, duration: DURATION },
  );
  let profiles = [];
  try {
    profiles = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
  } catch {
    // no profiles in this configuration
  }
  return { rps: r.requests.average, p99: r.latency.p99, errors: r.errors + r.non2xx, profiles };
}

const prof = 'prof:true,prof_active:true,lg_prof_sample:19';
const configs = {
  'jemalloc, no profiling': { MALLOC_CONF: '' },
  'prof:true, prof_active:false': { MALLOC_CONF: 'prof:true,prof_active:false,lg_prof_sample:19' },
  'profiling at 512 KiB': { MALLOC_CONF: prof },
  [`profiling + heapProfile() every ${EVERY / 1000} s`]: {
    MALLOC_CONF: prof,
    PROFILE_EVERY_MS: String(EVERY),
  },
  'profiling + JS frames (--perf-basic-prof)': { MALLOC_CONF: prof, JS_FRAMES: '1' },
};
const results = Object.fromEntries(Object.keys(configs).map((k) => [k, []]));
for (let r = 0; r < RUNS; r++) {
  for (const [name, env] of Object.entries(configs)) results[name].push(await once(env));
}
rmSync(dir, { recursive: true, force: true });
const base = results['jemalloc, no profiling'];
console.log(
  `${os.cpus().length} CPUs (${os.cpus()[0]?.model.trim()}), Linux ${os.release()}, node ${process.version}, ` +
    `${path.basename(jemalloc)}; ${RUNS} runs of ${DURATION} s per configuration, ${CONNECTIONS} connections, alternating\n`,
);
console.log(
  table(
    [
      'configuration',
      'req/s (median)',
      'vs none',
      'p99 ms (median)',
      'p99 vs none',
      'p99 range ms',
      'errors',
    ],
    Object.entries(results).map(([name, xs]) => [
      name,
      median(xs.map((x) => x.rps)).toFixed(0),
      (median(xs.map((x) => x.rps)) / median(base.map((x) => x.rps))).toFixed(3),
      median(xs.map((x) => x.p99)).toFixed(1),
      (median(xs.map((x) => x.p99)) / median(base.map((x) => x.p99))).toFixed(3),
      `${Math.min(...xs.map((x) => x.p99))}-${Math.max(...xs.map((x) => x.p99))}`,
      xs.reduce((s, x) => s + x.errors, 0),
    ]),
  ),
);
// heapProfile() itself, in a process that serves nothing (64 MiB of Buffers, 100 zlib streams).
const idle = [];
for (let r = 0; r < RUNS; r++) {
  const out = execFileSync(process.execPath, [service], {
    env: { ...process.env, LD_PRELOAD: jemalloc, MALLOC_CONF: prof, IDLE_PROFILES: '4' },
    encoding: 'utf8',
  });
  idle.push(JSON.parse(out));
}
const idleRow = (label, ps) => [
  label,
  ps.length,
  median(ps.map((p) => p.dumpMs)).toFixed(2),
  median(ps.map((p) => p.totalMs)).toFixed(1),
  median(ps.map((p) => p.loopDelayMaxMs)).toFixed(1),
  Math.max(...ps.map((p) => p.loopDelayMaxMs)).toFixed(1),
  median(ps.map((p) => p.controlDelayMaxMs)).toFixed(1),
];
console.log(
  `\n${table(
    [
      'heapProfile(), idle process',
      'count',
      'prof.dump ms (median)',
      'total ms (median)',
      'event-loop delay max ms (median)',
      '(max)',
      'same, idle wait as long (median)',
    ],
    [
      idleRow(
        'first in a process',
        idle.map((x) => x[0]),
      ),
      idleRow(
        'later ones',
        idle.flatMap((x) => x.slice(1)),
      ),
    ],
  )}`,
);

const all = Object.values(results).flatMap((xs) => xs.flatMap((x) => x.profiles));
if (all.length) {
  const first = Object.values(results).flatMap((xs) => xs.map((x) => x.profiles[0]).filter(Boolean));
  const later = Object.values(results).flatMap((xs) => xs.flatMap((x) => x.profiles.slice(1)));
  const row = (label, ps) => [
    label,
    ps.length,
    median(ps.map((p) => p.dumpMs)).toFixed(2),
    Math.max(...ps.map((p) => p.dumpMs)).toFixed(2),
    median(ps.map((p) => p.totalMs)).toFixed(1),
    median(ps.map((p) => p.loopDelayMaxMs)).toFixed(1),
  ];
  console.log(
    `\n${table(
      [
        'heapProfile() under load',
        'count',
        'prof.dump ms (median)',
        'prof.dump ms (max)',
        'total ms (median)',
        'event-loop delay max ms (median; includes serving)',
      ],
      [row('first in a process (reads symbol tables)', first), row('later ones', later)],
    )}`,
  );
}
