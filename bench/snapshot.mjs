// Cost of a cheap snapshot beside Node's own memory calls and beside the physical floor, in one
// process, in interleaved rounds so drift on a shared machine hits every candidate alike.
// Prints the median ns per call of each and its ratio to process.memoryUsage() and to the floors:
// - in-process floor: the same allocator + RSS reading looped in C++ inside this process's heap;
// - C floor: bench/floor.c, the raw calls in a bare C process (built here with cc if present).
//
//   node bench/snapshot.mjs
//   LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 node bench/snapshot.mjs
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { fragstat, machine, median, require, table } from './common.mjs';

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

const samples = Object.fromEntries([...Object.keys(candidates), 'in-process floor'].map((k) => [k, []]));
let sink = 0;
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, fn] of Object.entries(candidates)) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < CALLS; i++) sink ^= fn() ? 1 : 0;
    if (round > 0) samples[name].push(Number(process.hrtime.bigint() - t0) / CALLS); // round 0 warms up
  }
  const floor = binding.rawReadNs(CALLS);
  if (round > 0) samples['in-process floor'].push(floor);
}

let cFloor = null;
const floorBin = fileURLToPath(new URL('./floor', import.meta.url));
try {
  if (!existsSync(floorBin)) {
    execFileSync('cc', ['-O2', '-o', floorBin, fileURLToPath(new URL('./floor.c', import.meta.url)), '-ldl']);
  }
  cFloor = JSON.parse(execFileSync(floorBin, [String(CALLS)], { encoding: 'utf8' })).medianNs;
} catch {
  // no C compiler: the in-process floor stands alone
}

const base = median(samples['process.memoryUsage()']);
const inFloor = median(samples['in-process floor']);
console.log(`${machine()}; ${ROUNDS - 1} rounds x ${CALLS} calls, medians\n`);
const rows = Object.keys(samples).map((name) => {
  const m = median(samples[name]);
  return [
    name,
    m.toFixed(0),
    (m / base).toFixed(2),
    (m / inFloor).toFixed(2),
    cFloor ? (m / cFloor).toFixed(2) : 'n/a',
  ];
});
if (cFloor)
  rows.push([
    'C floor (bench/floor.c, own process)',
    cFloor.toFixed(0),
    (cFloor / base).toFixed(2),
    (cFloor / inFloor).toFixed(2),
    '1.00',
  ]);
console.log(table(['call', 'median ns', 'vs memoryUsage()', 'vs in-process floor', 'vs C floor'], rows));
if (sink === 42) console.log('');
