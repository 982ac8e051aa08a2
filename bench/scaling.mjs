// How the cost of snapshot(), snapshot({ detail: true }) and trim() grows with the number of free
// chunks (1e3 to 1e6, one arena's worth of 128-byte holes) and with the number of glibc arenas
// (1 to 16, worker threads each fragmenting their own). Prints tables; with --svg DIR also
// writes the charts.
//
//   node --expose-gc bench/scaling.mjs [--svg docs]
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { fragstat, fragment, machine, median, require, settle, table } from './common.mjs';

const { renderSvg } = require('../dist/cli/plot.js');
const REPEAT = Number(process.env.REPEAT || 5);
const svgDir = process.argv.includes('--svg') ? process.argv[process.argv.indexOf('--svg') + 1] : null;

function time(fn) {
  const t0 = process.hrtime.bigint();
  const r = fn();
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, r };
}

async function costs() {
  const cheap = [];
  const detail = [];
  let snap;
  for (let i = 0; i < REPEAT; i++) {
    cheap.push(time(() => fragstat.snapshot()).ms);
    const d = time(() => fragstat.snapshot({ detail: true }));
    detail.push(d.ms);
    snap = d.r;
  }
  const t = await fragstat.trim();
  return {
    cheap: median(cheap),
    detail: median(detail),
    trim: t.durationMs,
    released: t.releasedBytes,
    chunks: snap.detail ? snap.detail.arenas.reduce((s, a) => s + a.freeChunks, 0) : null,
    arenas: snap.arenas,
  };
}

console.log(`${machine()}; medians of ${REPEAT} reads; trim: one call\n`);

// 1. Free chunks, main thread only.
const chunkRows = [];
const chunkPoints = { cheap: [], detail: [], trim: [] };
for (const n of [1e3, 1e4, 1e5, 1e6]) {
  let bufs = fragment(2 * n, 128);
  await settle();
  const c = await costs();
  chunkRows.push([
    n.toExponential(0),
    c.chunks,
    c.arenas,
    c.cheap.toFixed(3),
    c.detail.toFixed(3),
    c.trim.toFixed(3),
  ]);
  for (const k of ['cheap', 'detail', 'trim']) chunkPoints[k].push({ x: Math.log10(n), y: c[k] });
  bufs = null;
  await settle();
}
console.log('Cost against free chunks (Buffers of 128 B, every other one freed)\n');
console.log(
  table(
    ['target free chunks', 'free chunks seen', 'arenas', 'snapshot() ms', 'detail ms', 'trim() ms'],
    chunkRows,
  ),
);

// 2. Arenas: k workers, each fragmenting its own arena; 2e5 free chunks in all.
const workerCode = `
const { parentPort, workerData } = require('node:worker_threads');
require('node:v8').setFlagsFromString('--expose-gc');
const collect = require('node:vm').runInNewContext('gc');
const bufs = [];
for (let i = 0; i < workerData.count; i++) bufs.push(Buffer.alloc(128, 1));
for (let i = 1; i < bufs.length; i += 2) bufs[i] = null;
collect();
setTimeout(() => { collect(); parentPort.postMessage('ready'); }, 200);
parentPort.on('message', () => process.exit(0));
`;
const arenaRows = [];
const arenaPoints = { cheap: [], detail: [], trim: [] };
for (const k of [1, 2, 4, 8, 16]) {
  const workers = [];
  for (let i = 0; i < k; i++) {
    const w = new Worker(workerCode, {
      eval: true,
      workerData: { count: Math.round(4e5 / k) },
      execArgv: [],
    });
    workers.push(w);
    await new Promise((r) => w.once('message', r));
  }
  await settle();
  const c = await costs();
  arenaRows.push([k, c.arenas, c.chunks, c.cheap.toFixed(3), c.detail.toFixed(3), c.trim.toFixed(3)]);
  for (const key of ['cheap', 'detail', 'trim']) arenaPoints[key].push({ x: c.arenas, y: c[key] });
  for (const w of workers) w.postMessage('exit');
  await Promise.all(workers.map((w) => new Promise((r) => w.once('exit', r))));
  await settle();
  await fragstat.trim(); // leave the next round a heap without this round's holes in use
}
console.log('\nCost against arenas (worker threads, 2e5 free chunks in all)\n');
console.log(
  table(['workers', 'arenas seen', 'free chunks seen', 'snapshot() ms', 'detail ms', 'trim() ms'], arenaRows),
);

if (svgDir) {
  const series = (p) => [
    { label: 'snapshot()', points: p.cheap },
    { label: 'snapshot({ detail: true })', points: p.detail },
    { label: 'trim()', points: p.trim },
  ];
  writeFileSync(
    path.join(svgDir, 'scaling-free-chunks.svg'),
    renderSvg(series(chunkPoints), {
      title: 'Cost against free chunks',
      xLabel: 'log10(free chunks)',
      yLabel: 'ms',
    }),
  );
  writeFileSync(
    path.join(svgDir, 'scaling-arenas.svg'),
    renderSvg(series(arenaPoints), {
      title: 'Cost against arenas (2e5 free chunks)',
      xLabel: 'arenas',
      yLabel: 'ms',
    }),
  );
  console.log(`\nwrote ${svgDir}/scaling-free-chunks.svg and ${svgDir}/scaling-arenas.svg`);
}
