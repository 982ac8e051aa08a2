// What the JS thread feels while fragstat works on a big fragmented heap: event-loop delay
// (perf_hooks.monitorEventLoopDelay) during trim(), snapshotAsync({ detail }) and trimSync(),
// against a quiet baseline in the same process.
//
//   node --expose-gc bench/event-loop.mjs            (TOTAL_MB=1024 by default)
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fragstat, fragment, machine, median, MiB, settle, sleep, table } from './common.mjs';

const TOTAL = Number(process.env.TOTAL_MB || 1024) * MiB;
const SIZE = 64 * 1024;
const ROUNDS = Number(process.env.ROUNDS || 5);

// A timer ticking every millisecond measures the delay; each phase lasts `ms` or until `work` ends.
async function measure(work) {
  const h = monitorEventLoopDelay({ resolution: 1 });
  const tick = setInterval(() => {}, 1);
  h.enable();
  await sleep(20);
  const t0 = performance.now();
  const result = await work();
  const ms = performance.now() - t0;
  await sleep(20);
  h.disable();
  clearInterval(tick);
  return { p99: h.percentile(99) / 1e6, max: h.max / 1e6, ms, result };
}

const rows = [];
const results = { baseline: [], 'snapshotAsync({ detail: true })': [], 'trim()': [], 'trimSync()': [] };
const released = { 'trim()': [], 'trimSync()': [] };
for (let r = 0; r < ROUNDS; r++) {
  let bufs = fragment(TOTAL / SIZE, SIZE);
  await settle();
  results.baseline.push(await measure(() => sleep(100)));
  results['snapshotAsync({ detail: true })'].push(
    await measure(() => fragstat.snapshotAsync({ detail: true })),
  );
  const kind = r % 2 ? 'trimSync()' : 'trim()';
  const m = await measure(() => (kind === 'trim()' ? fragstat.trim() : Promise.resolve(fragstat.trimSync())));
  results[kind].push(m);
  released[kind].push(m.result.releasedBytes);
  // Also the other form, on a heap fragmented again the same way.
  bufs = null;
  await settle();
  bufs = fragment(TOTAL / SIZE, SIZE);
  await settle();
  const other = kind === 'trim()' ? 'trimSync()' : 'trim()';
  const m2 = await measure(() =>
    other === 'trim()' ? fragstat.trim() : Promise.resolve(fragstat.trimSync()),
  );
  results[other].push(m2);
  released[other].push(m2.result.releasedBytes);
  bufs = null;
  await settle();
}
const base = median(results.baseline.map((x) => x.p99));
for (const [name, xs] of Object.entries(results)) {
  const p99 = median(xs.map((x) => x.p99));
  rows.push([
    name,
    median(xs.map((x) => x.ms)).toFixed(1),
    p99.toFixed(2),
    (p99 - base).toFixed(2),
    median(xs.map((x) => x.max)).toFixed(2),
    released[name] ? (median(released[name]) / MiB).toFixed(0) : '',
  ]);
}
console.log(
  `${machine()}\n${TOTAL / MiB} MiB of ${SIZE / 1024} KiB Buffers, every other one freed; medians of ${ROUNDS} rounds\n`,
);
console.log(
  table(
    ['call', 'duration ms', 'loop delay p99 ms', 'p99 over baseline ms', 'max delay ms', 'released MiB'],
    rows,
  ),
);
