// What holders() costs: for V8 heaps of HEAP_MB (comma-separated) MiB of ordinary JS objects,
//  - in the process itself: the pause while V8 writes the snapshot, the whole holders() call, how
//    much the caller's V8 heap grows across it, and the rise of its peak RSS;
//  - parsing that snapshot file in a fresh process: parseHeapSnapshot() alone, holdersFromSnapshot()
//    (parse + dominators + groups), against JSON.parse of the same text as the baseline: time, the
//    memory the result keeps (V8 heap + typed arrays) and the rise of peak RSS.
// Each parse runs REPEAT times in a fresh child; medians. Figures per MiB of snapshot text and per
// GiB of V8 heap.
//
//   node bench/holders.mjs
//   HEAP_MB=64,256,512 REPEAT=5 node bench/holders.mjs
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { machine, median, MiB } from './common.mjs';

const here = fileURLToPath(import.meta.url);
const role = process.argv[2];
const GiB = 1024 * MiB;

/** A heap of about `mb` MiB: records with strings, arrays and nested objects, in a Map. */
function buildHeap(mb) {
  const records = new Map();
  const target = mb * MiB;
  const v8 = globalThis.__v8;
  for (let i = 0; v8.getHeapStatistics().used_heap_size < target; i++) {
    for (let k = 0; k < 1000; k++, i++) {
      records.set(`user-${i}`, {
        id: i,
        name: `name ${i} ${'x'.repeat(i % 40)}`,
        tags: [`t${i % 7}`, `t${i % 13}`],
        address: { city: `city ${i % 500}`, zip: i % 99999 },
        score: i * 1.5,
      });
    }
  }
  return records;
}

async function target() {
  const v8 = await import('node:v8');
  globalThis.__v8 = v8;
  const { createRequire } = await import('node:module');
  const fragstat = createRequire(import.meta.url)('..');
  const keep = buildHeap(Number(process.env.MB));
  globalThis.gc();
  const heapBytes = v8.getHeapStatistics().used_heap_size;
  const rssPeakBefore = process.resourceUsage().maxRSS * 1024;
  const out = { heapBytes, records: keep.size };
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  if (process.env.WHAT === 'write') {
    // V8 writing the snapshot alone: the part of holders() any heap snapshot tool pays.
    out.file = path.join(process.env.DIR, 'bench.heapsnapshot');
    v8.writeHeapSnapshot(out.file);
  } else {
    out.pauseMs = (await fragstat.holders({ directory: process.env.DIR })).pauseMs;
  }
  out.ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0); // the process's, holders()'s worker thread included
  out.cpuMs = (cpu.user + cpu.system) / 1000;
  out.callerHeapGrowthBytes = v8.getHeapStatistics().used_heap_size - heapBytes;
  out.rssPeakRiseBytes = process.resourceUsage().maxRSS * 1024 - rssPeakBefore;
  console.log(JSON.stringify(out));
}

async function parse() {
  const { createReadStream, readFileSync } = await import('node:fs');
  const { createRequire } = await import('node:module');
  const require = createRequire(import.meta.url);
  const { parseHeapSnapshot } = require('../dist/profile/heapsnapshot.js');
  const { holdersFromSnapshot } = require('../dist/profile/holders.js');
  const file = process.env.FILE;
  const mode = process.env.MODE;
  globalThis.gc();
  const base = process.memoryUsage();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let result;
  if (mode === 'json') result = JSON.parse(readFileSync(file, 'utf8'));
  else {
    const chunks = createReadStream(file, { encoding: 'utf8', highWaterMark: MiB });
    result = mode === 'parse' ? await parseHeapSnapshot(chunks) : await holdersFromSnapshot(chunks);
  }
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  // ArrayBuffers are freed by a sweeper after the GC: collect twice, a moment apart.
  globalThis.gc();
  await new Promise((r) => setTimeout(r, 200));
  globalThis.gc();
  const after = process.memoryUsage();
  console.log(
    JSON.stringify({
      ms,
      cpuMs: (cpu.user + cpu.system) / 1000,
      keptBytes: after.heapUsed + after.arrayBuffers - (base.heapUsed + base.arrayBuffers),
      peakRiseBytes: process.resourceUsage().maxRSS * 1024 - base.rss,
      ok: result !== undefined,
    }),
  );
}

function child(args, env) {
  const out = execFileSync(process.execPath, ['--expose-gc', '--max-old-space-size=8192', here, ...args], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    maxBuffer: 64 * MiB,
  });
  return JSON.parse(out.trim().split('\n').pop());
}

async function main() {
  const sizes = (process.env.HEAP_MB || '64,256').split(',').map(Number);
  const repeat = Number(process.env.REPEAT || 3);
  const f = (x, d = 1) => x.toFixed(d);
  const mib = (b, d = 1) => `${f(b / MiB, d)} MiB`;
  console.log(`# holders() cost (${machine()})\n`);
  const rows = [];
  for (const mb of sizes) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fragstat-bench-holders-'));
    try {
      const w = [];
      const h = [];
      for (let r = 0; r < repeat; r++) {
        w.push(child(['target'], { MB: String(mb), DIR: dir, WHAT: 'write' }));
        h.push(child(['target'], { MB: String(mb), DIR: dir, WHAT: 'holders' }));
      }
      const med = (xs) => Object.fromEntries(Object.keys(xs[0]).map((k) => [k, median(xs.map((x) => x[k]))]));
      const parsed = {};
      for (const mode of ['json', 'parse', 'holders']) {
        const runs = [];
        for (let r = 0; r < repeat; r++) runs.push(child(['parse'], { FILE: w[0].file, MODE: mode }));
        parsed[mode] = med(runs.map(({ ok, ...x }) => x));
      }
      rows.push({
        heapGiB: w[0].heapBytes / GiB,
        snapMiB: statSync(w[0].file).size / MiB,
        write: med(w.map(({ file, ...x }) => x)),
        holders: med(h),
        parsed,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  console.log(`In the process (medians of ${repeat} runs, each in a fresh process):\n`);
  console.log(
    '| V8 heap | snapshot | writeHeapSnapshot alone: wall (CPU), peak RSS rise | holders(): wall (CPU), pause | caller V8 heap growth | holders() peak RSS rise | per GiB of V8 heap: pause (CPU), peak RSS rise |',
  );
  console.log('|---|---|---|---|---|---|---|');
  for (const { heapGiB, snapMiB, write: w, holders: h } of rows) {
    console.log(
      `| ${mib(heapGiB * GiB, 0)} | ${f(snapMiB)} MiB | ${f(w.ms, 0)} ms (${f(w.cpuMs, 0)} ms), ${mib(w.rssPeakRiseBytes, 0)} | ` +
        `${f(h.ms, 0)} ms (${f(h.cpuMs, 0)} ms), ${f(h.pauseMs, 0)} ms | ${mib(h.callerHeapGrowthBytes, 2)} | ${mib(h.rssPeakRiseBytes, 0)} | ` +
        `${f(h.pauseMs / heapGiB / 1000)} s (${f(w.cpuMs / heapGiB / 1000)} s), ${f(h.rssPeakRiseBytes / heapGiB / GiB)} GiB |`,
    );
  }
  console.log(
    `\nParsing the snapshot file in another process (medians of ${repeat} runs; kept: what the result holds after GC):\n`,
  );
  console.log(
    '| V8 heap | snapshot | what | wall (CPU) | CPU per MiB of snapshot | kept (per MiB) | peak RSS rise (per MiB) | per GiB of V8 heap: CPU, peak RSS rise | vs JSON.parse: CPU, peak RSS rise |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|');
  const names = { json: 'JSON.parse (baseline)', parse: 'parseHeapSnapshot', holders: 'holdersFromSnapshot' };
  for (const { heapGiB, snapMiB, parsed } of rows) {
    for (const mode of ['json', 'parse', 'holders']) {
      const p = parsed[mode];
      const j = parsed.json;
      console.log(
        `| ${mib(heapGiB * GiB, 0)} | ${f(snapMiB)} MiB | ${names[mode]} | ${f(p.ms, 0)} ms (${f(p.cpuMs, 0)} ms) | ${f(p.cpuMs / snapMiB)} ms | ` +
          `${mib(p.keptBytes)} (${f(p.keptBytes / MiB / snapMiB, 2)}) | ${mib(p.peakRiseBytes)} (${f(p.peakRiseBytes / MiB / snapMiB, 2)}) | ` +
          `${f(p.cpuMs / heapGiB / 1000)} s, ${f(p.peakRiseBytes / heapGiB / GiB)} GiB | ${f(p.cpuMs / j.cpuMs, 2)}×, ${f(p.peakRiseBytes / j.peakRiseBytes, 2)}× |`,
      );
    }
  }
}

if (role === 'target') await target();
else if (role === 'parse') await parse();
else await main();
