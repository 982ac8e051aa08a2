// What fragstat attach costs the process it attaches to.
//
// 1. An HTTP service started without fragstat (examples/stairstep: JSON in, gzip out), idle: how
//    long an attach takes and keeps the inspector open. Then under autocannon: p99 latency and
//    throughput with no attach, and with one attach halfway through the run (it opens the
//    inspector, loads fragstat, reads, closes it). Runs alternate so drift hits both.
// 2. The pause of a heap snapshot streamed by takeHeapSnapshot: a process with a V8 heap of about
//    HEAPS MiB measures its own event-loop stall with a 1 ms timer loop and reports the longest
//    gap over IPC; the figure is also given per GiB of V8 heap.
//
//   node bench/attach.mjs   (RUNS=4, DURATION=5 seconds, CONNECTIONS=16, HEAPS=100,500,
//                            SNAPSHOT_RUNS=1, PARTS=idle,http,snapshot)
import { fork, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { jsonBody, machine, median, require, table } from './common.mjs';

const RUNS = Number(process.env.RUNS || 4);
const DURATION = Number(process.env.DURATION || 5);
const CONNECTIONS = Number(process.env.CONNECTIONS || 16);
const PARTS = (process.env.PARTS || 'idle,http,snapshot').split(',');
const SNAPSHOT_RUNS = Number(process.env.SNAPSHOT_RUNS || 1);
const HEAPS = (process.env.HEAPS || '100,500').split(',').map(Number);
const { attach, openInspector } = require('../dist/attach/attach.js');
const { takeHeapSnapshot } = require('../dist/attach/inspector-client.js');
const service = fileURLToPath(new URL('../examples/stairstep/service.js', import.meta.url));
const GiB = 2 ** 30;

async function httpRun(withAttach) {
  const child = spawn(process.execPath, [service], { stdio: ['ignore', 'pipe', 'ignore'] });
  const url = await new Promise((resolve) =>
    child.stdout.on('data', (d) => resolve(/listening on (\S+)/.exec(String(d))[1])),
  );
  const windows = [];
  // One attach halfway through the run, as a user would run it (the first loads fragstat).
  const attaching = (async () => {
    if (!withAttach) return;
    await new Promise((r) => setTimeout(r, (DURATION * 1000) / 2));
    const t0 = performance.now();
    const r = await attach(child.pid);
    windows.push({ totalMs: performance.now() - t0, openMs: r.inspector.openMs });
  })();
  const r = await require('autocannon')({
    url,
    method: 'POST',
    body: jsonBody,
    headers: { 'content-type': 'application/json' },
    connections: CONNECTIONS,
    duration: DURATION,
  });
  await attaching;
  child.kill();
  await new Promise((resolve) => child.on('close', resolve));
  return {
    rps: r.requests.average,
    p99: r.latency.p99,
    max: r.latency.max,
    errors: r.errors + r.non2xx,
    windows,
  };
}

const heapService = `
globalThis.keep = [];
const target = Number(process.env.HEAP_MIB) * 1024 * 1024;
while (process.memoryUsage().heapUsed < target) {
  const a = new Array(1000);
  for (let i = 0; i < a.length; i++) a[i] = { i, s: 'x' + i, o: { n: i } };
  globalThis.keep.push(a);
}
let last = performance.now(), worst = 0;
setInterval(() => { const now = performance.now(); worst = Math.max(worst, now - last); last = now; }, 1);
process.on('message', (m) => {
  if (m === 'start') { worst = 0; last = performance.now(); process.send({ started: true }); }
  if (m === 'stop') setTimeout(() => process.send({ worstGapMs: worst, heapUsedBytes: process.memoryUsage().heapUsed }), 20);
  if (m === 'self') {
    // The baseline: the same snapshot taken by the process itself through node:inspector.
    const s = new (require('node:inspector').Session)();
    s.connect();
    let bytes = 0;
    s.on('HeapProfiler.addHeapSnapshotChunk', (e) => (bytes += e.params.chunk.length));
    worst = 0; last = performance.now();
    s.post('HeapProfiler.takeHeapSnapshot', {}, () => {
      s.disconnect();
      setTimeout(() => process.send({ selfGapMs: worst, textBytes: bytes }), 20);
    });
  }
});
process.send({ ready: true, heapUsedBytes: process.memoryUsage().heapUsed });`;

async function snapshotRun(heapMib) {
  const child = fork('-e', [heapService], {
    execArgv: ['--max-old-space-size=4096', '-e', heapService],
    env: { ...process.env, HEAP_MIB: String(heapMib) },
    stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
  });
  const next = (key) =>
    new Promise((resolve) => child.on('message', (m) => m[key] !== undefined && resolve(m)));
  await next('ready');
  const i = await openInspector(child.pid, { timeoutMs: 10_000 });
  child.send('start');
  await next('started');
  const t0 = performance.now();
  let bytes = 0;
  for await (const chunk of takeHeapSnapshot(i.session)) bytes += chunk.length;
  const snapshotMs = performance.now() - t0;
  await i.close();
  child.send('stop');
  const m = await next('worstGapMs');
  child.send('self');
  const self = await next('selfGapMs');
  child.kill();
  await new Promise((resolve) => child.on('close', resolve));
  return {
    heapUsedBytes: m.heapUsedBytes,
    pauseMs: m.worstGapMs,
    selfPauseMs: self.selfGapMs,
    snapshotMs,
    textBytes: bytes,
  };
}

console.log(`${machine()}\n`);
if (PARTS.includes('idle')) {
  // The same service with no load: the first attach loads fragstat into it, the next ones reuse it.
  const child = spawn(process.execPath, [service], { stdio: ['ignore', 'pipe', 'ignore'] });
  await new Promise((resolve) => child.stdout.once('data', resolve));
  const first = [];
  const next = [];
  for (let r = 0; r < RUNS; r++) {
    const t0 = performance.now();
    const a = await attach(child.pid);
    (r === 0 ? first : next).push({ totalMs: performance.now() - t0, openMs: a.inspector.openMs });
  }
  child.kill();
  await new Promise((resolve) => child.on('close', resolve));
  console.log(
    `Idle service: first attach ${first[0].totalMs.toFixed(0)} ms (inspector open ${first[0].openMs} ms); ` +
      (next.length
        ? `the ${next.length} next, median ${median(next.map((x) => x.totalMs)).toFixed(0)} ms ` +
          `(inspector open ${median(next.map((x) => x.openMs)).toFixed(0)} ms)\n`
        : '\n'),
  );
}

if (PARTS.includes('http')) {
  const runs = { none: [], attach: [] };
  for (let r = 0; r < RUNS; r++) {
    runs.none.push(await httpRun(false));
    runs.attach.push(await httpRun(true));
  }
  const p99 = (k) => median(runs[k].map((x) => x.p99));
  const rps = (k) => median(runs[k].map((x) => x.rps));
  const max = (k) => median(runs[k].map((x) => x.max));
  const windows = runs.attach.flatMap((x) => x.windows);
  console.log(
    `HTTP service, ${RUNS} runs of ${DURATION} s each, ${CONNECTIONS} connections, alternating (medians):\n`,
  );
  console.log(
    table(
      ['', 'p99 latency (ms)', 'max latency (ms)', 'requests/s', 'errors'],
      [
        [
          'no attach',
          p99('none'),
          max('none'),
          rps('none').toFixed(0),
          runs.none.reduce((a, x) => a + x.errors, 0),
        ],
        [
          'one attach mid-run',
          `${p99('attach')} (${(p99('attach') / p99('none')).toFixed(2)}x)`,
          `${max('attach')} (${(max('attach') / max('none')).toFixed(2)}x)`,
          `${rps('attach').toFixed(0)} (${(rps('attach') / rps('none')).toFixed(2)}x)`,
          runs.attach.reduce((a, x) => a + x.errors, 0),
        ],
      ],
    ),
  );
  console.log(
    `\n${windows.length} attaches: median ${median(windows.map((w) => w.totalMs)).toFixed(0)} ms each, ` +
      `inspector open ${median(windows.map((w) => w.openMs)).toFixed(0)} ms of it (median)\n`,
  );
}

if (PARTS.includes('snapshot')) {
  const rows = [];
  for (const heap of HEAPS) {
    const rs = [];
    for (let r = 0; r < SNAPSHOT_RUNS; r++) rs.push(await snapshotRun(heap));
    const used = median(rs.map((x) => x.heapUsedBytes));
    const pause = median(rs.map((x) => x.pauseMs));
    rows.push([
      `${(used / 2 ** 20).toFixed(0)} MiB`,
      pause.toFixed(0),
      (pause / (used / GiB)).toFixed(0),
      median(rs.map((x) => x.snapshotMs)).toFixed(0),
      `${median(rs.map((x) => x.selfPauseMs)).toFixed(0)} (${(pause / median(rs.map((x) => x.selfPauseMs))).toFixed(2)}x)`,
      `${(median(rs.map((x) => x.textBytes)) / 2 ** 20).toFixed(0)} MiB`,
    ]);
  }
  console.log(
    `Heap snapshot streamed by takeHeapSnapshot (medians of ${SNAPSHOT_RUNS} run(s)); baseline: the process taking the same snapshot itself through node:inspector:\n`,
  );
  console.log(
    table(
      [
        'V8 heap used',
        'longest event-loop stall (ms)',
        'ms per GiB',
        'snapshot streamed in (ms)',
        'stall, taken in-process (ms)',
        'text',
      ],
      rows,
    ),
  );
}
