// How long mallocs on the JS thread wait while fragstat reads or trims glibc's heap on a pool
// thread: glibc holds each arena's lock for the whole walk of its free chunks, and the JS thread
// allocates in the main arena. Builds a heap with N/2 free chunks (N small Buffers, every other
// one freed), then, ROUNDS times per call: starts the call, lets the pool thread get into the
// walk, and times a burst of 64 JS-thread mallocs (about 0.2 ms on a quiet heap).
//
//   nice node --expose-gc bench/lockwait.mjs   (N=2000000 ROUNDS=8 SIZE=128)
import { fragstat, machine, median, sleep, table } from './common.mjs';

const N = Number(process.env.N || 2e6);
const ROUNDS = Number(process.env.ROUNDS || 8);
const SIZE = Number(process.env.SIZE || 128);
const spin = (ms) => {
  const t = performance.now();
  while (performance.now() - t < ms);
};
const sink = [];
function burst() {
  const t = performance.now();
  for (let i = 0; i < 64; i++) sink[i] = Buffer.allocUnsafeSlow(1100 + i * 40);
  return performance.now() - t;
}

const bufs = new Array(N);
for (let i = 0; i < N; i++) bufs[i] = Buffer.alloc(SIZE, 1);
for (let i = 1; i < N; i += 2) bufs[i] = null;
globalThis.KEEP = bufs;
globalThis.gc();
globalThis.gc();
await sleep(500);
const d = fragstat.snapshot({ detail: true });
const freeChunks = d.detail.arenas.reduce((s, a) => s + a.freeChunks, 0);

// health() is called once first so that its reading is cached, as it is in a running service.
await fragstat.health();
const ops = {
  'none (baseline)': null,
  'snapshotAsync()': () => fragstat.snapshotAsync(),
  'snapshotAsync({ detail: true })': () => fragstat.snapshotAsync({ detail: true }),
  'health() (shared reading)': () => fragstat.health(),
  'trim()': () => fragstat.trim(),
};
const rows = [];
for (const [name, op] of Object.entries(ops)) {
  const waits = [];
  const held = [];
  for (let r = 0; r < ROUNDS; r++) {
    const p = op ? op() : null;
    spin(2); // let the pool thread get into the walk
    waits.push(burst());
    if (p) {
      const x = await p;
      if (x && typeof x.durationMs === 'number') held.push(x.durationMs);
    }
    await sleep(20);
  }
  rows.push([
    name,
    median(waits).toFixed(2),
    Math.max(...waits).toFixed(2),
    held.length ? median(held).toFixed(1) : '-',
  ]);
}
console.log(`${machine()}; ${freeChunks} free chunks; ${ROUNDS} rounds per call\n`);
console.log(
  table(['call on the pool', 'JS malloc burst ms (median)', 'max', 'allocator read ms (median)'], rows),
);
