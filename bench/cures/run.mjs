// Cures for native-heap growth on two real workloads, side by side: a sharp/libvips image service
// and a ws permessage-deflate service, each run under every configuration below. Per run: rising
// load for DURATION s, then a GC, then IDLE s of nothing; the service's RSS is sampled from
// /proc/<pid>/status every 250 ms (peak), read at the end (idle), and its minor faults counted
// from /proc/<pid>/stat (field minflt) over the whole run.
//
//   nice node bench/cures/run.mjs                 # long mode: DURATION=36 IDLE=20 ROUNDS=2
//   DURATION=10 ROUNDS=1 node bench/cures/run.mjs # short mode
//   SERVICES=ws CONFIGS=glibc,jemalloc-bg node bench/cures/run.mjs --json out.json
//
// The machine is shared and small: throughput and p99 are only comparable within one run, as
// ratios against plain glibc in the same round.
import { fork } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { machine, median, MiB, require, sleep, table } from '../common.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const { findLibrary } = require('../dist/read/libraries.js');
const WebSocket = require('ws');

const DURATION = Number(process.env.DURATION || 36);
const IDLE = Number(process.env.IDLE || 20);
const ROUNDS = Number(process.env.ROUNDS || 2);
const SERVICES = (process.env.SERVICES || 'sharp,ws').split(',');
const jsonAt = process.argv.indexOf('--json');
const jsonPath = jsonAt > 0 ? process.argv[jsonAt + 1] : null;

const jemalloc = findLibrary('jemalloc');
const CONFIGS = {
  glibc: { env: {} },
  'glibc+monitor': { env: { CURE: 'monitor' } },
  // The same without its arena cap: what the cap adds to the trims.
  'monitor-no-cap': { env: { CURE: 'monitor', CURE_AUTOTRIM: '{"arenaMax":false}' } },
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

// A small deterministic PRNG, so every configuration sees the same request mix.
function prng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
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
  const child = fork(path.join(here, `${service}-service.cjs`), [], {
    env,
    execArgv: ['--expose-gc', '-r', path.join(here, 'cure.cjs')],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ask = (msg, key) =>
    new Promise((resolve) => {
      const on = (m) => {
        if (m && m[key] !== undefined) {
          child.off('message', on);
          resolve(m);
        }
      };
      child.on('message', on);
      if (msg) child.send(msg);
    });
  return { child, ask, ready: ask(null, 'port') };
}

// Concurrency rises linearly from 1 to `max` over the load phase.
const activeAt = (elapsed, max) =>
  1 + Math.floor(((max - 1) * Math.min(elapsed, DURATION * 1000)) / (DURATION * 1000));

async function loadSharp(port, latencies) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const MAX = 6;
  const began = Date.now();
  let done = 0;
  const worker = async (i) => {
    const rand = prng(1000 + i);
    while (Date.now() - began < DURATION * 1000) {
      if (i >= activeAt(Date.now() - began, MAX)) {
        await sleep(50);
        continue;
      }
      const q = `src=${Math.floor(rand() * 6)}&w=${200 + Math.floor(rand() * 1400)}&f=${rand() < 0.3 ? 'jpeg' : 'webp'}&r=${[0, 90, 180][Math.floor(rand() * 3)]}`;
      const t0 = performance.now();
      await new Promise((resolve, reject) => {
        http
          .get({ host: '127.0.0.1', port, path: `/resize?${q}`, agent }, (res) => {
            res.resume();
            res.on('end', resolve);
          })
          .on('error', reject);
      });
      latencies.push(performance.now() - t0);
      done++;
    }
  };
  await Promise.all(Array.from({ length: MAX }, (_, i) => worker(i)));
  agent.destroy();
  return done;
}

async function loadWs(port, latencies) {
  const MAX = 48;
  const began = Date.now();
  let done = 0;
  const sockets = [];
  const worker = async (i) => {
    while (i >= activeAt(Date.now() - began, MAX)) {
      if (Date.now() - began >= DURATION * 1000) return;
      await sleep(50);
    }
    const rand = prng(2000 + i);
    const ws = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: true });
    sockets.push(ws);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    while (Date.now() - began < DURATION * 1000) {
      const n = 50 + Math.floor(rand() * 1500);
      const items = Array.from({ length: n }, (_, k) => ({ id: k, name: `item-${i}-${k}`, value: rand() }));
      const t0 = performance.now();
      await new Promise((resolve) => {
        ws.once('message', resolve);
        ws.send(JSON.stringify({ from: i, items }));
      });
      latencies.push(performance.now() - t0);
      done++;
    }
  };
  await Promise.all(Array.from({ length: MAX }, (_, i) => worker(i)));
  // Close every connection: the service's deflate streams are freed, as after a traffic burst.
  await Promise.all(
    sockets.map(
      (ws) =>
        new Promise((resolve) =>
          ws.readyState === WebSocket.CLOSED ? resolve() : (ws.once('close', resolve), ws.close()),
        ),
    ),
  );
  return done;
}

async function runOne(service, config) {
  const { child, ask, ready } = start(service, config);
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
  const done = await (service === 'sharp' ? loadSharp : loadWs)(port, latencies);
  const seconds = (Date.now() - t0) / 1000;
  const afterLoad = rssBytes(pid);
  await ask('gc', 'gc');
  await sleep(IDLE * 1000);
  clearInterval(sampler);
  const idle = rssBytes(pid);
  const faults = minorFaults(pid) - faults0;
  const { trims, trimsBy, allocator, where } = await ask('trims', 'trims');
  child.kill('SIGKILL');
  latencies.sort((a, b) => a - b);
  return {
    service,
    config,
    allocator,
    peakMiB: peak / MiB,
    afterLoadMiB: afterLoad / MiB,
    idleMiB: idle / MiB,
    throughput: done / seconds,
    p99Ms: latencies[Math.floor(latencies.length * 0.99)] ?? NaN,
    minorFaults: faults,
    trims,
    trimsBy,
    where,
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
      const r = { round, ...(await runOne(service, config)) };
      results.push(r);
      console.error(
        `round ${round + 1} ${service} ${config}: peak ${r.peakMiB.toFixed(0)} MiB, idle ${r.idleMiB.toFixed(0)} MiB, ` +
          `${r.throughput.toFixed(1)}/s, p99 ${r.p99Ms.toFixed(0)} ms, ${r.minorFaults} minflt, ${r.trims} trims` +
          (r.trimsBy ? ` ${JSON.stringify(r.trimsBy)}` : '') +
          (r.where?.arenas
            ? ` ${JSON.stringify(r.where, (k, v) => (typeof v === 'number' ? Math.round(v) : v))}`
            : ''),
      );
    }
  }
}

const rows = [];
for (const service of SERVICES) {
  const base = (round) =>
    results.find((r) => r.service === service && r.config === 'glibc' && r.round === round);
  for (const config of configNames) {
    const rs = results.filter((r) => r.service === service && r.config === config);
    const ratio = (key) => {
      const xs = rs.map((r) => (base(r.round) ? r[key] / base(r.round)[key] : NaN)).filter(Number.isFinite);
      return xs.length ? median(xs).toFixed(2) : '-';
    };
    const med = (key, digits = 0) => median(rs.map((r) => r[key])).toFixed(digits);
    rows.push([
      service,
      config,
      med('peakMiB'),
      `${med('idleMiB')} (${rs.map((r) => r.idleMiB.toFixed(0)).join('/')})`,
      med('throughput', 1),
      ratio('throughput'),
      med('p99Ms'),
      ratio('p99Ms'),
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
if (jsonPath)
  writeFileSync(jsonPath, JSON.stringify({ machine: machine(), DURATION, IDLE, ROUNDS, results }, null, 2));
