// Cost of fragstat's calls beside Node's own, measured in one process, one call after another in
// interleaved rounds so drift on a shared machine hits every candidate alike. Prints the median
// nanoseconds per call of each, and its ratio to process.memoryUsage().
//
//   node bench/snapshot.mjs            (under whatever allocator serves malloc)
//   LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 node bench/snapshot.mjs
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const fragstat = require('..');
const { binding } = require('../dist/binding.js');

const ROUNDS = Number(process.env.ROUNDS || 31);
const CALLS = Number(process.env.CALLS || 20000);

const candidates = {
  'process.memoryUsage()': () => process.memoryUsage(),
  'process.memoryUsage.rss()': () => process.memoryUsage.rss(),
  'fragstat.snapshot()': () => fragstat.snapshot(),
  'rss: pread on a kept fd': () => binding.rssBytes(),
  'rss: open+read+close': () => binding.rssBytesReopen(),
};

const samples = Object.fromEntries(Object.keys(candidates).map((k) => [k, []]));
let sink = 0;
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, fn] of Object.entries(candidates)) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < CALLS; i++) sink ^= fn() ? 1 : 0;
    const ns = Number(process.hrtime.bigint() - t0) / CALLS;
    if (round > 0) samples[name].push(ns); // round 0 warms up
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const base = median(samples['process.memoryUsage()']);
const info = fragstat.allocator();
console.log(
  `allocator: ${info.name} ${info.version ?? ''}; node ${process.version}; ${ROUNDS - 1} rounds x ${CALLS} calls`,
);
console.log(`${'call'.padEnd(28)} ${'median ns'.padStart(10)} ${'vs memoryUsage()'.padStart(17)}`);
for (const name of Object.keys(candidates)) {
  const m = median(samples[name]);
  console.log(`${name.padEnd(28)} ${m.toFixed(0).padStart(10)} ${(m / base).toFixed(2).padStart(16)}x`);
}
if (sink === 42) console.log('');
