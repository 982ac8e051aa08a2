// What a flood of health and metrics requests costs a service's other routes, on a heap with
// about a million free chunks (the heap a glibc walk is slowest on). Phases alternate in one
// server: the other route alone ('quiet'); the same load with a flood of /health/memory, of
// /metrics, and of the other route itself (the reference: what serving that many requests of a
// cheap route costs a single JS thread), each at FLOOD_RATE requests per second over 20
// connections; then the same floods unlimited (as fast as the server answers). Prints medians of
// the other route's throughput and the event loop's p99 delay per phase, and ratios to 'quiet'.
//
//   nice node --expose-gc bench/flood.mjs   (RUNS=5 DURATION=4 N=2000000 FLOOD_RATE=200)
//   FRAG=/path/to/another/fragstat ...       (compare with another build of the package)
//   MONITOR=0 ...                            (no monitor in the service)
import { spawn } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { machine, median, require, table } from './common.mjs';

const autocannon = require('autocannon');
const RUNS = Number(process.env.RUNS || 5);
const DURATION = Number(process.env.DURATION || 4);
const FLOOD_CONNECTIONS = 20;
const FLOOD_RATE = Number(process.env.FLOOD_RATE || 200);
const server = fileURLToPath(new URL('./flood-server.cjs', import.meta.url));

const child = spawn(process.execPath, ['--expose-gc', server], {
  env: process.env,
  stdio: ['ignore', 'pipe', 'inherit'],
});
const info = await new Promise((resolve, reject) => {
  let text = '';
  child.stdout.on('data', (d) => {
    text += d;
    if (text.includes('\n')) resolve(JSON.parse(text.split('\n')[0]));
  });
  child.on('exit', (code) => reject(new Error(`the service exited (${code})`)));
});
const base = `http://127.0.0.1:${info.port}`;
const get = (p) =>
  new Promise((resolve, reject) =>
    http
      .get(`${base}${p}`, (res) => {
        let b = '';
        res.on('data', (c) => (b += c));
        res.on('end', () => resolve(b));
      })
      .on('error', reject),
  );
const load = (path, connections, rate) =>
  autocannon({
    url: `${base}${path}`,
    duration: DURATION,
    connections,
    ...(rate ? { overallRate: rate } : {}),
  });

async function phase(flood) {
  await get('/stats'); // resets the event-loop histogram
  const [app, f] = await Promise.all([
    load('/', 10),
    flood ? load(flood.path, FLOOD_CONNECTIONS, flood.rate) : Promise.resolve(null),
  ]);
  const loop = JSON.parse(await get('/stats'));
  return {
    rps: app.requests.average,
    p99: app.latency.p99,
    loopP99: loop.p99Ms,
    loopMax: loop.maxMs,
    flood: f ? f.requests.total : 0,
    errors: app.errors + app.non2xx + (f ? f.errors + f.non2xx : 0),
  };
}

const phases = {
  quiet: null,
  [`health flood, ${FLOOD_RATE}/s`]: { path: '/health/memory', rate: FLOOD_RATE },
  [`metrics flood, ${FLOOD_RATE}/s`]: { path: '/metrics', rate: FLOOD_RATE },
  [`other route flood, ${FLOOD_RATE}/s (reference)`]: { path: '/', rate: FLOOD_RATE },
  'health flood, unlimited': { path: '/health/memory' },
  'metrics flood, unlimited': { path: '/metrics' },
  'other route flood, unlimited (reference)': { path: '/' },
};
const results = Object.fromEntries(Object.keys(phases).map((k) => [k, []]));
for (let r = 0; r < RUNS; r++) {
  for (const [name, flood] of Object.entries(phases)) results[name].push(await phase(flood));
}
child.kill();

const q = results.quiet;
const m = (xs, k) => median(xs.map((x) => x[k]));
console.log(
  `${machine()}; fragstat from ${process.env.FRAG || 'this checkout'}, monitor ${process.env.MONITOR === '0' ? 'off' : 'at its default interval'}; ` +
    `${info.freeChunks} free chunks, one walk ${info.walkMs.toFixed(1)} ms; ${RUNS} runs of ${DURATION} s per phase, alternating; ` +
    `other route 10 connections, floods ${FLOOD_CONNECTIONS}\n`,
);
console.log(
  table(
    [
      'phase',
      'other route req/s',
      'vs quiet (median of rounds)',
      'its p99 ms',
      'loop p99 ms',
      'loop p99 rise ms (median of rounds)',
      'loop max ms',
      'flood requests served',
      'errors',
    ],
    Object.entries(results).map(([name, xs]) => [
      name,
      m(xs, 'rps').toFixed(0),
      // Each round's flood against that round's quiet phase: the machine's drift between rounds
      // cancels out.
      median(xs.map((x, i) => x.rps / q[i].rps)).toFixed(3),
      m(xs, 'p99').toFixed(1),
      m(xs, 'loopP99').toFixed(1),
      median(xs.map((x, i) => x.loopP99 - q[i].loopP99)).toFixed(1),
      m(xs, 'loopMax').toFixed(1),
      m(xs, 'flood').toFixed(0),
      xs.reduce((s, x) => s + x.errors, 0),
    ]),
  ),
);
