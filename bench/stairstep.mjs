// Reproduces the stair-step: the example service (examples/stairstep/service.js) under load
// bursts of growing body size and concurrency, with rests between them, run under glibc, glibc
// with fragstat's auto-trim, jemalloc (default, and with its background purge thread), tcmalloc
// and mimalloc, each sampled by `fragstat run`. Prints a table (medians over RUNS runs, the
// configurations interleaved in each run) and writes docs/stairstep-rss.svg (RSS over time in the
// first run, one line per configuration). About two and a half minutes per configuration and run.
//
//   RUNS=3 node bench/stairstep.mjs [--out docs]
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { machine, median, MiB, require, sleep, table } from './common.mjs';

const autocannon = require('autocannon');
const root = fileURLToPath(new URL('..', import.meta.url));
const outDir = process.argv.includes('--out')
  ? process.argv[process.argv.indexOf('--out') + 1]
  : path.join(root, 'docs');
const dataDir = path.join(outDir, 'stairstep');
mkdirSync(dataDir, { recursive: true });
// Seconds per burst, per rest between bursts, and idle at the end. Rests must be long enough for
// V8 to collect the requests' garbage by itself (its memory reducer runs when a process goes
// quiet), or "allocated" still holds dead Buffers when the rest ends.
const BURST_S = Number(process.env.BURST_S || 8);
const REST_S = Number(process.env.REST_S || 20);
const IDLE_S = Number(process.env.IDLE_S || 30);
const RUNS = Number(process.env.RUNS || 1);
if (!Number.isInteger(RUNS) || RUNS < 1)
  throw new Error(`RUNS must be a positive integer, not ${process.env.RUNS}`);

// Bursts of growing body size and concurrency; bodies vary within each burst.
const bursts = [
  { kb: 16, connections: 16 },
  { kb: 64, connections: 32 },
  { kb: 256, connections: 64 },
  { kb: 1024, connections: 64 },
].map((b) => ({ ...b, seconds: BURST_S }));
const REST_MS = REST_S * 1000;
const IDLE_MS = IDLE_S * 1000;

function bodies(kb) {
  // 8 payloads between a quarter and all of `kb`, of different shapes.
  return Array.from({ length: 8 }, (_, v) => {
    const target = ((kb * 1024) / 4) * (1 + (3 * v) / 7);
    const items = [];
    let size = 20;
    for (let i = 0; size < target; i++) {
      const item = {
        id: i,
        name: `item-${i}-${'x'.repeat((i * 7 + v * 13) % 60)}`,
        n: i * v,
        tags: ['a', 'b', 'c'].slice(0, 1 + (i % 3)),
      };
      items.push(item);
      size += JSON.stringify(item).length + 1;
    }
    return JSON.stringify({ items });
  });
}

const configs = [
  { name: 'glibc', allocator: 'glibc' },
  { name: 'glibc + auto-trim', allocator: 'glibc', env: { STAIRSTEP_AUTOTRIM: '1' } },
  // fragstat run turns jemalloc's background thread on unless MALLOC_CONF sets it: say it is off.
  { name: 'jemalloc', allocator: 'jemalloc', env: { MALLOC_CONF: 'background_thread:false' } },
  // jemalloc decays dirty pages only while it works, unless a background thread does it.
  {
    name: 'jemalloc + background_thread',
    allocator: 'jemalloc',
    env: { MALLOC_CONF: 'background_thread:true' },
  },
  { name: 'tcmalloc', allocator: 'tcmalloc' },
  { name: 'mimalloc', allocator: 'mimalloc' },
];

async function runConfig(c, run) {
  const file = path.join(dataDir, `${c.name.replace(/[^a-z0-9]+/g, '-')}-${run}.ndjson`);
  const child = spawn(
    process.execPath,
    [
      path.join(root, 'bin/fragstat.js'),
      'run',
      '--allocator',
      c.allocator,
      '--interval',
      '500ms',
      '--quiet',
      '--out',
      file,
      '--',
      process.execPath,
      path.join(root, 'examples/stairstep/service.js'),
    ],
    { env: { ...process.env, ...c.env }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const url = await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      const m = /listening on (\S+)/.exec(String(d));
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`${c.name}: service exited with ${code}`)));
  });
  const t0 = Date.now();
  const marks = [];
  for (const b of bursts) {
    const requests = bodies(b.kb).map((body) => ({
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json' },
    }));
    const r = await autocannon({ url, connections: b.connections, duration: b.seconds, requests });
    marks.push({
      burst: b,
      rps: r.requests.average,
      p99: r.latency.p99,
      errors: r.errors + r.non2xx,
      restEnd: 0,
    });
    await sleep(REST_MS);
    marks[marks.length - 1].restEnd = Date.now();
  }
  await sleep(IDLE_MS);
  const idleEnd = Date.now();
  child.kill('SIGTERM');
  await new Promise((r) => child.on('close', r));
  const samples = readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
  const at = (t) => samples.filter((s) => s.timestamp <= t).pop() ?? samples[0];
  const last = at(idleEnd);
  return {
    file,
    name: c.name,
    allocator: samples[0].allocator,
    seconds: (Date.now() - t0) / 1000,
    peak: Math.max(...samples.map((s) => s.rssBytes)),
    afterRests: marks.map((m) => at(m.restEnd).rssBytes),
    final: last.rssBytes,
    allocated: last.allocatedBytes,
    free: last.freeBytes,
    rps: median(marks.map((m) => m.rps)),
    p99: Math.max(...marks.map((m) => m.p99)),
    errors: marks.reduce((s, m) => s + m.errors, 0),
  };
}

const runs = new Map(configs.map((c) => [c.name, []]));
for (let run = 1; run <= RUNS; run++) {
  for (const c of configs) {
    process.stderr.write(`run ${run}/${RUNS}: ${c.name}...\n`);
    runs.get(c.name).push(await runConfig(c, run));
  }
}
// Medians over the runs; allocated and free are null where the allocator cannot tell.
const med = (xs) => (xs.some((x) => x === null || x === undefined) ? null : median(xs));
const results = configs.map((c) => {
  const rs = runs.get(c.name);
  return {
    name: c.name,
    file: rs[0].file,
    peak: med(rs.map((r) => r.peak)),
    afterRests: bursts.map((_, i) => med(rs.map((r) => r.afterRests[i]))),
    final: med(rs.map((r) => r.final)),
    finals: rs.map((r) => r.final),
    allocated: med(rs.map((r) => r.allocated)),
    free: med(rs.map((r) => r.free)),
    rps: med(rs.map((r) => r.rps)),
    p99: med(rs.map((r) => r.p99)),
    errors: rs.reduce((n, r) => n + r.errors, 0),
  };
});
const mb = (b) => (b === null || b === undefined ? 'n/a' : (b / MiB).toFixed(0));
console.log(
  `${machine()}\nbursts (KiB bodies x connections, ${bursts[0].seconds} s each, ${REST_MS / 1000} s rest): ${bursts.map((b) => `${b.kb}x${b.connections}`).join(', ')}; then ${IDLE_MS / 1000} s idle\n` +
    `${RUNS} run(s) per configuration, interleaved; medians, and every run's final RSS\n`,
);
console.log(
  table(
    [
      'configuration',
      'peak RSS MiB',
      'RSS after each rest MiB',
      'final RSS MiB',
      'final RSS per run MiB',
      'allocated MiB',
      'free MiB',
      'req/s (median burst)',
      'worst p99 ms (median run)',
      'errors',
    ],
    results.map((r) => [
      r.name,
      mb(r.peak),
      r.afterRests.map(mb).join(' / '),
      mb(r.final),
      r.finals.map(mb).join(' / '),
      mb(r.allocated),
      mb(r.free),
      r.rps.toFixed(0),
      r.p99,
      r.errors,
    ]),
  ),
);
execFileSync(
  process.execPath,
  [
    path.join(root, 'bin/fragstat.js'),
    'plot',
    ...results.map((r) => r.file),
    '-o',
    path.join(outDir, 'stairstep-rss.svg'),
  ],
  { stdio: 'inherit' },
);
