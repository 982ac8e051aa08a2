// Cures for native-heap growth on six real workloads, side by side, each run under every
// configuration below: a sharp/libvips image service, a ws permessage-deflate service, a fetch()
// aggregator, React server rendering with gzip, better-sqlite3 from worker threads, and protobufjs
// with pino's worker-thread transport (one load-<workload>.mjs each, shared helpers in
// load-common.mjs). Per run: rising load for DURATION s, then a GC, then IDLE s of nothing; the
// service's RSS is sampled from /proc/<pid>/status every 250 ms (peak), read at the end (idle), and
// its minor faults counted from /proc/<pid>/stat (field minflt) over the whole run; at the end the
// service reports V8's heap (process.memoryUsage()) and the trims its cure made.
//
//   nice node bench/cures/run.mjs                 # long mode: DURATION=36 IDLE=20 ROUNDS=2 (about an hour and a half)
//   DURATION=10 ROUNDS=1 node bench/cures/run.mjs # short mode
//   SERVICES=ws CONFIGS=glibc,jemalloc-bg node bench/cures/run.mjs --json out.json
//
// The machine is shared and small: throughput and p99 are only comparable within one run, as
// ratios against plain glibc in the same round.
import { fork } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { machine, median, MiB, require, sleep, table } from '../common.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const { findLibrary } = require('../dist/read/libraries.js');

const WORKLOADS = ['sharp', 'ws', 'fetch', 'ssr', 'sqlite', 'protobuf'];
const DURATION = Number(process.env.DURATION || 36);
const IDLE = Number(process.env.IDLE || 20);
const ROUNDS = Number(process.env.ROUNDS || 2);
const SERVICES = (process.env.SERVICES || WORKLOADS.join(',')).split(',');
const jsonAt = process.argv.indexOf('--json');
const jsonPath = jsonAt > 0 ? process.argv[jsonAt + 1] : null;

const jemalloc = findLibrary('jemalloc');
const CONFIGS = {
  glibc: { env: {} },
  'glibc+monitor': { env: { CURE: 'monitor' } },
  // The same without its arena cap: what the cap adds to the trims.
  'monitor-no-cap': { env: { CURE: 'monitor', CURE_AUTOTRIM: '{"arenaMax":false}' } },
  // The same without asking V8 for its idle heap when the process goes quiet.
  'monitor-no-v8': { env: { CURE: 'monitor', CURE_AUTOTRIM: '{"v8Heap":false}' } },
  'glibc+trim5s': { env: { CURE: 'periodic' } },
  'arena_max=2': { env: { MALLOC_ARENA_MAX: '2' } },
  jemalloc: { env: { LD_PRELOAD: jemalloc }, needs: jemalloc },
  'jemalloc-bg': { env: { LD_PRELOAD: jemalloc, MALLOC_CONF: 'background_thread:true' }, needs: jemalloc },
};
// More configurations for an experiment, e.g. EXTRA_CONFIGS='{"tt":{"CURE":"monitor","CURE_TUNE":"{\\"trimThresholdBytes\\":1048576}"}}'
for (const [name, env] of Object.entries(JSON.parse(process.env.EXTRA_CONFIGS || '{}')))
  CONFIGS[name] = { env };
const configNames = (process.env.CONFIGS || Object.keys(CONFIGS).join(',')).split(',');
for (const name of configNames) {
  if (!CONFIGS[name]) throw new Error(`unknown config ${name}; known: ${Object.keys(CONFIGS).join(', ')}`);
  if (CONFIGS[name].needs === null)
    throw new Error(`${name} needs libjemalloc2 (apt-get install libjemalloc2)`);
}
const workloads = {};
for (const service of SERVICES) {
  if (!WORKLOADS.includes(service))
    throw new Error(`unknown service ${service}; known: ${WORKLOADS.join(', ')}`);
  workloads[service] = await import(`./load-${service}.mjs`);
  await workloads[service].prepare?.();
}

function rssBytes(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}
function minorFaults(pid) {
  // Fields after the command name (which may hold spaces): state is field 3, minflt field 10.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[7]);
}

function start(service, config) {
  const env = { ...process.env, ...CONFIGS[config].env };
  if (!env.LD_PRELOAD) delete env.LD_PRELOAD;
  const child = fork(path.join(here, workloads[service].service), [], {
    env,
    execArgv: ['--expose-gc', '-r', path.join(here, 'cure.cjs')],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  // A reply carrying `key`; rejects if the service exits first (a cure that throws at start).
  const ask = (msg, key) =>
    new Promise((resolve, reject) => {
      const on = (m) => {
        if (m && m[key] !== undefined) {
          child.off('message', on);
          resolve(m);
        }
      };
      child.on('message', on);
      exited.then(({ code, signal }) => reject(new Error(`service exited (${signal ?? code})`)));
      if (msg) child.send(msg);
    });
  // SIGTERM lets a service clean up (sqlite removes its database); SIGKILL after 5 s.
  const stop = async () => {
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  return { child, ask, stop, ready: ask(null, 'port') };
}

async function runOne(service, config) {
  const { child, ask, stop, ready } = start(service, config);
  const { port } = await ready;
  const pid = child.pid;
  const faults0 = minorFaults(pid);
  let peak = rssBytes(pid);
  const sampler = setInterval(() => {
    try {
      peak = Math.max(peak, rssBytes(pid));
    } catch {}
  }, 250);
  const latencies = [];
  const t0 = Date.now();
  const done = await workloads[service].load(port, latencies, { DURATION });
  const seconds = (Date.now() - t0) / 1000;
  const afterLoad = rssBytes(pid);
  await ask('gc', 'gc');
  await sleep(IDLE * 1000);
  clearInterval(sampler);
  const idle = rssBytes(pid);
  const faults = minorFaults(pid) - faults0;
  const { trims, trimsBy, allocator, where, v8, monitor } = await ask('trims', 'trims');
  await stop();
  latencies.sort((a, b) => a - b);
  return {
    service,
    config,
    allocator,
    peakMiB: peak / MiB,
    afterLoadMiB: afterLoad / MiB,
    idleMiB: idle / MiB,
    // V8's heap of the main thread at idle (worker threads' isolates are not in it).
    v8HeapTotalMiB: v8.heapTotal / MiB,
    v8HeapUsedMiB: v8.heapUsed / MiB,
    idleMinusV8MiB: (idle - v8.heapTotal) / MiB,
    throughput: done / seconds,
    requests: done,
    p99Ms: latencies[Math.floor(latencies.length * 0.99)] ?? NaN,
    minorFaults: faults,
    trims,
    trimsBy,
    where,
    monitor,
  };
}

const results = [];
console.error(`# ${machine()}`);
console.error(`# DURATION=${DURATION} s, IDLE=${IDLE} s, ROUNDS=${ROUNDS}`);
for (let round = 0; round < ROUNDS; round++) {
  for (const service of SERVICES) {
    // Each round starts one configuration later, so none always runs first (or right after another).
    const order = configNames.map((_, i) => configNames[(i + round) % configNames.length]);
    for (const config of order) {
      let r;
      try {
        r = { round, ...(await runOne(service, config)) };
      } catch (err) {
        console.error(`round ${round + 1} ${service} ${config}: failed: ${err.message}`);
        continue;
      }
      results.push(r);
      console.error(
        `round ${round + 1} ${service} ${config}: peak ${r.peakMiB.toFixed(0)} MiB, idle ${r.idleMiB.toFixed(0)} MiB ` +
          `(V8 heap ${r.v8HeapTotalMiB.toFixed(0)}, used ${r.v8HeapUsedMiB.toFixed(0)}), ` +
          `${r.requests} requests, ${r.throughput.toFixed(1)}/s, p99 ${r.p99Ms.toFixed(0)} ms, ` +
          `${r.minorFaults} minflt, ${r.trims} trims` +
          (r.trimsBy ? ` ${JSON.stringify(r.trimsBy)}` : '') +
          (r.monitor?.v8Releases
            ? `, ${r.monitor.v8Releases} V8 release(s) of ${(r.monitor.v8ReleasedBytes / MiB).toFixed(0)} MiB, longest pause ${r.monitor.v8LongestPauseMs.toFixed(0)} ms`
            : '') +
          (r.where?.arenas
            ? ` ${JSON.stringify(r.where, (k, v) => (typeof v === 'number' ? Math.round(v) : v))}`
            : ''),
      );
    }
  }
}

const runsOf = (service, config) => results.filter((r) => r.service === service && r.config === config);
/** The median over rounds of r[key] / the same round's `base` configuration's; null if none. */
function ratio(service, config, base, key) {
  const xs = runsOf(service, config)
    .map((r) => {
      const b = results.find((x) => x.service === service && x.config === base && x.round === r.round);
      return b ? r[key] / b[key] : NaN;
    })
    .filter(Number.isFinite);
  return xs.length ? median(xs).toFixed(2) : '-';
}

const rows = [];
for (const service of SERVICES) {
  for (const config of configNames) {
    const rs = runsOf(service, config);
    if (!rs.length) continue;
    const med = (key, digits = 0) => median(rs.map((r) => r[key])).toFixed(digits);
    const rounds = (key) => `${med(key)} (${rs.map((r) => r[key].toFixed(0)).join('/')})`;
    rows.push([
      service,
      config,
      med('peakMiB'),
      rounds('idleMiB'),
      rounds('idleMinusV8MiB'),
      med('v8HeapTotalMiB'),
      med('throughput', 1),
      ratio(service, config, 'glibc', 'throughput'),
      med('p99Ms'),
      ratio(service, config, 'glibc', 'p99Ms'),
      (median(rs.map((r) => r.minorFaults)) / 1000).toFixed(0),
      med('trims'),
    ]);
  }
}
console.log(
  table(
    [
      'service',
      'config',
      'peak RSS MiB',
      'idle RSS MiB (rounds)',
      'idle - V8 MiB (rounds)',
      'V8 heapTotal MiB',
      'req/s',
      'req/s vs glibc',
      'p99 ms',
      'p99 vs glibc',
      'minflt k',
      'trims',
    ],
    rows,
  ),
);

// Per workload: fragstat's default policy against jemalloc with its background thread, and the
// cost of each against plain glibc (medians of per-round ratios).
const M = 'glibc+monitor';
const J = 'jemalloc-bg';
console.log();
console.log(
  table(
    [
      'service',
      `idle: ${M} / ${J}`,
      `idle - V8: ${M} / ${J}`,
      `req/s vs glibc: ${M}`,
      `req/s vs glibc: ${J}`,
      `peak vs glibc: ${M}`,
      `peak vs glibc: ${J}`,
    ],
    SERVICES.map((s) => [
      s,
      ratio(s, M, J, 'idleMiB'),
      ratio(s, M, J, 'idleMinusV8MiB'),
      ratio(s, M, 'glibc', 'throughput'),
      ratio(s, J, 'glibc', 'throughput'),
      ratio(s, M, 'glibc', 'peakMiB'),
      ratio(s, J, 'glibc', 'peakMiB'),
    ]),
  ),
);
if (jsonPath)
  writeFileSync(jsonPath, JSON.stringify({ machine: machine(), DURATION, IDLE, ROUNDS, results }, null, 2));
