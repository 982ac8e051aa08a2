// What each way of asking V8 for its idle heap gives back, and the pause it costs. Each run is a
// fresh process: it keeps LIVE MiB of objects (a cache), runs a burst that allocates short- and
// medium-lived objects for BURST ms (as a request burst does: new space grows to its largest,
// old space fills with objects that die soon after), goes idle for a second, then applies one
// method and reports V8's heap in RAM (total_physical_size), RSS and the JS thread's pause.
//
//   node bench/v8-release.mjs                      # every method at LIVE=16, pause at 16/128/512
//   METHODS=memory-pressure,low-memory LIVES=16,256 ROUNDS=5 node bench/v8-release.mjs
//
// Methods: idle-5s (nothing: what V8 does on its own in 5 s), gc (a forced full GC, --expose-gc),
// memory-pressure and low-memory (fragstat's releaseV8Heap), optimize-for-size and semi-space-1
// (start-up flags, then 5 s idle).
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { machine, median, table } from './common.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, '..');
const ROUNDS = Number(process.env.ROUNDS || 3);
const METHODS = (
  process.env.METHODS || 'idle-5s,gc,memory-pressure,low-memory,optimize-for-size,semi-space-1'
).split(',');
const LIVES = (process.env.LIVES || '16,128,512').split(',').map(Number);
const BURST = Number(process.env.BURST || 1500);

const FLAGS = {
  'idle-5s': [],
  gc: ['--expose-gc'],
  'memory-pressure': [],
  'low-memory': [],
  'optimize-for-size': ['--optimize-for-size'],
  'semi-space-1': ['--max-semi-space-size=1'],
};

// The child: build, burst, idle, apply, report one JSON line.
const child = `
const v8 = require('node:v8');
const fragstat = require(${JSON.stringify(root)});
const MiB = 1048576;
const method = process.argv[1], live = Number(process.argv[2]), burst = Number(process.argv[3]);
const phys = () => v8.getHeapStatistics().total_physical_size;
const cache = [];
// About 100 bytes per entry in V8's heap (an object, a short string, an array of two).
for (let i = 0; i < live * MiB / 100; i++) cache.push({ i, s: 'k' + i, a: [i, i] });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
(async () => {
  const end = Date.now() + burst;
  let kept = [];
  while (Date.now() < end) {
    // A request: a tree of objects rendered to a string; some survive a while (a session, a queue).
    const items = Array.from({ length: 200 }, (_, k) => ({ id: k, name: 'item ' + k, tags: ['a' + k, 'b'] }));
    const html = items.map((x) => '<li>' + x.name + x.tags.join(',') + '</li>').join('');
    kept.push(html);
    if (kept.length > 2000) kept = [];
    await null;
  }
  kept = null;
  await sleep(1000);
  const before = { heap: phys(), rss: process.memoryUsage.rss(), used: v8.getHeapStatistics().used_heap_size };
  let pauseMs = 0;
  if (method === 'gc') { const t = performance.now(); gc(); pauseMs = performance.now() - t; }
  else if (method === 'memory-pressure' || method === 'low-memory') {
    const r = fragstat.releaseV8Heap({ method });
    if (!r.supported) throw new Error('not supported');
    pauseMs = r.pauseMs;
  } else await sleep(5000);
  await sleep(200);
  const after = { heap: phys(), rss: process.memoryUsage.rss() };
  console.log(JSON.stringify({ before, after, pauseMs, cache: cache.length }));
})();
`;

function runOne(method, live) {
  const r = spawnSync(
    process.execPath,
    [...FLAGS[method], '-e', child, method, String(live), String(BURST)],
    {
      encoding: 'utf8',
      timeout: 120_000,
    },
  );
  if (r.status !== 0) throw new Error(`${method} ${live}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

const MiB = 1048576;
console.error(`# ${machine()}`);
console.error(`# ROUNDS=${ROUNDS} BURST=${BURST} ms`);
const results = [];
for (let round = 0; round < ROUNDS; round++) {
  for (const live of LIVES) {
    // Rotated, so no method always runs first.
    const order = METHODS.map((_, i) => METHODS[(i + round) % METHODS.length]);
    for (const method of order) {
      // The start-up flags and idle runs answer the same question at every size: run them at the first only.
      if (live !== LIVES[0] && !['gc', 'memory-pressure', 'low-memory'].includes(method)) continue;
      const r = runOne(method, live);
      results.push({ round, live, method, ...r });
      console.error(
        `round ${round + 1} live ${live} ${method}: V8 ${(r.before.heap / MiB).toFixed(1)} -> ${(r.after.heap / MiB).toFixed(1)} MiB, ` +
          `RSS ${(r.before.rss / MiB).toFixed(0)} -> ${(r.after.rss / MiB).toFixed(0)} MiB, pause ${r.pauseMs.toFixed(1)} ms`,
      );
    }
  }
}

const rows = [];
for (const live of LIVES) {
  for (const method of METHODS) {
    const rs = results.filter((r) => r.live === live && r.method === method);
    if (!rs.length) continue;
    const m = (f) => median(rs.map(f));
    const range = (f, d = 1) => {
      const xs = rs.map(f);
      return `${Math.min(...xs).toFixed(d)}-${Math.max(...xs).toFixed(d)}`;
    };
    rows.push([
      live,
      method,
      (m((r) => r.before.heap) / MiB).toFixed(1),
      `${(m((r) => r.after.heap) / MiB).toFixed(1)} (${range((r) => r.after.heap / MiB)})`,
      (m((r) => r.before.rss - r.after.rss) / MiB).toFixed(1),
      `${m((r) => r.pauseMs).toFixed(1)} (${range((r) => r.pauseMs)})`,
    ]);
  }
}
console.log(
  table(
    [
      'live MiB',
      'method',
      'V8 in RAM before MiB',
      'after MiB (range)',
      'RSS fall MiB',
      'JS thread pause ms (range)',
    ],
    rows,
  ),
);
