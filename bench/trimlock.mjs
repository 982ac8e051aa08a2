// How long a trim holds each allocator's locks, seen from the JS thread: while trim() runs on a
// libuv pool thread, the JS thread times back-to-back small mallocs one by one, and the longest
// of them is the longest the trim made a JS-thread malloc wait (plus whatever else stalled that
// malloc; the baseline runs the same loop with no trim). One allocator per process: the script
// re-runs itself under LD_PRELOAD for jemalloc, tcmalloc and mimalloc, and plain for glibc.
//
// Two heap shapes, each about a million free chunks under glibc:
//   small holes  2M Buffers of 128 B, every other one freed (little for a trim to release);
//   big holes    the small holes, plus ~1 GiB of 64 KiB Buffers with every other one freed
//                (~512 MiB of whole free pages), rebuilt before every round since a trim
//                releases them.
// Per round: the malloc loop alone for SPAN ms (baseline), then trim() and the same loop for SPAN
// ms, then the trim is awaited. SPAN is 1.5x a first untimed trim's durationMs plus 20 ms. Then
// trimSync() once per shape, for reference: it blocks the JS thread for its whole duration.
//
//   nice node --expose-gc bench/trimlock.mjs
//   ALLOCATORS=glibc,jemalloc ROUNDS=8 BIG_MB=1024 SMALL=2000000 nice node --expose-gc bench/trimlock.mjs
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { allocatorEnv, fragstat, machine, median, MiB, require, sleep, table } from './common.mjs';

const ROUNDS = Number(process.env.ROUNDS || 8);
const SMALL = Number(process.env.SMALL || 2e6); // 128 B Buffers, half of them freed
const BIG_MB = Number(process.env.BIG_MB || 1024); // of 64 KiB Buffers, half of them freed
const BIG_SIZE = 64 * 1024;
const self = fileURLToPath(import.meta.url);

// ---- one allocator, in this process -----------------------------------------------------------

// The timed mallocs: sizes 1100 to 3620 B (not the heap's 128 B or 64 KiB), kept in a ring of 64
// so each one is a real allocation that lives until the ring comes round.
const ring = new Array(64);
// One sample per malloc; 4M samples covers a span of several seconds at ~1 us per malloc.
const samples = new Float32Array(4 * 1024 * 1024);
// The start and length of every malloc over 0.1 ms, to leave out the ones a GC pause overlapped:
// the loop allocates ~1 GB/s of ArrayBuffers, so V8 collects during it, trim or not.
const LONG_MS = 0.1;
const longs = new Float64Array(2 * 256 * 1024);
const gcs = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcs.push([e.startTime, e.startTime + e.duration]);
}).observe({ entryTypes: ['gc'] });

/** Runs the malloc loop for `spanMs`; returns its longest malloc, p99, count, and when the longest came. */
function mallocLoop(spanMs) {
  const start = performance.now();
  const end = start + spanMs;
  let n = 0;
  let max = 0;
  let maxAt = 0;
  let nLong = 0;
  for (let i = 0; ; i++) {
    const t0 = performance.now();
    if (t0 >= end) break;
    ring[i & 63] = Buffer.allocUnsafeSlow(1100 + (i % 64) * 40);
    const dt = performance.now() - t0;
    if (n < samples.length) samples[n++] = dt;
    if (dt > LONG_MS && nLong < longs.length) {
      longs[nLong++] = t0;
      longs[nLong++] = dt;
    }
    if (dt > max) {
      max = dt;
      maxAt = t0 - start;
    }
  }
  const sorted = samples.subarray(0, n).slice().sort();
  return {
    maxMs: max,
    maxAtMs: maxAt,
    p99Ms: sorted[Math.floor(n * 0.99)],
    mallocs: n,
    longs: longs.slice(0, nLong),
  };
}

/** The loop's longest malloc that no GC pause overlapped (GC entries arrive after the loop). */
function outsideGc(loop) {
  let max = 0;
  let gcMs = 0;
  for (let k = 0; k < loop.longs.length; k += 2) {
    const [a, b] = [loop.longs[k], loop.longs[k] + loop.longs[k + 1]];
    if (gcs.some(([s, e]) => s < b && e > a)) gcMs = Math.max(gcMs, b - a);
    else max = Math.max(max, b - a);
  }
  delete loop.longs;
  return { ...loop, maxNoGcMs: max, maxWithGcMs: gcMs };
}

function freeChunks() {
  const d = fragstat.snapshot({ detail: true });
  return d.detail ? d.detail.arenas.reduce((s, a) => s + a.freeChunks, 0) : null;
}

let small = null;
let big = null;
function buildSmall() {
  small = new Array(SMALL);
  for (let i = 0; i < SMALL; i++) small[i] = Buffer.alloc(128, 1);
  for (let i = 1; i < SMALL; i += 2) small[i] = null;
}
/**
 * Lets V8 free what is unreachable. Not common.mjs's settle(): that waits for the allocator's
 * figures to stop moving, and under glibc each check walks the ~1M free chunks, while V8's own
 * mallocs keep the figure moving by a few bytes, so it ran its 40 checks on every call.
 */
async function quiesce() {
  globalThis.gc();
  globalThis.gc();
  await sleep(300);
  globalThis.gc();
}

/** (Re)builds the big holes: drops the last set, then fills new Buffers and frees every other one. */
async function buildBig() {
  big = null;
  await quiesce();
  const count = Math.floor((BIG_MB * MiB) / BIG_SIZE);
  big = new Array(count);
  for (let i = 0; i < count; i++) big[i] = Buffer.alloc(BIG_SIZE, 1);
  for (let i = 1; i < count; i += 2) big[i] = null;
  await quiesce();
}

async function measureShape(shape, rebuild) {
  await rebuild();
  const chunks = freeChunks();
  const rss = process.memoryUsage.rss();
  // A first, untimed trim sets the span of the timed loop.
  const first = await fragstat.trim();
  const spanMs = 1.5 * first.durationMs + 20;
  const rounds = [];
  for (let r = 0; r < ROUNDS; r++) {
    if (shape === 'big holes') await rebuild();
    else await quiesce();
    await sleep(50);
    const base = mallocLoop(spanMs);
    await quiesce();
    await sleep(50);
    const p = fragstat.trim(); // mimalloc and jemalloc do a step on this thread first (blockingMs)
    const loop = mallocLoop(spanMs);
    const t = await p;
    await sleep(20); // lets the GC entries of both loops arrive
    rounds.push({ base: outsideGc(base), loop: outsideGc(loop), trim: t, overran: t.durationMs > spanMs });
  }
  await rebuild();
  const sync = fragstat.trimSync();
  return { shape, chunks, rssBytes: rss, spanMs, rounds, sync };
}

async function child() {
  const info = fragstat.allocator();
  buildSmall();
  const shapes = [];
  shapes.push(await measureShape('small holes', quiesce));
  shapes.push(await measureShape('big holes', buildBig));
  process.stdout.write(
    JSON.stringify({
      allocator: info.name,
      version: info.version,
      machine: machine(),
      arenaTops: process.env.FRAGSTAT_ARENA_TOPS !== '0',
      shapes,
    }),
  );
}

// ---- every allocator, each in a child ---------------------------------------------------------

async function parent() {
  const wanted = (process.env.ALLOCATORS || 'glibc,jemalloc,tcmalloc,mimalloc').split(',');
  const results = [];
  for (const name of wanted) {
    const env = allocatorEnv(name);
    if (env === null) continue;
    const load = os.loadavg()[0];
    const out = execFileSync(process.execPath, ['--expose-gc', self, '--child'], {
      env,
      encoding: 'utf8',
      maxBuffer: 1 << 26,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const r = JSON.parse(out);
    if (r.allocator !== name) throw new Error(`expected ${name} in the child, found ${r.allocator}`);
    results.push({ ...r, load: [load, os.loadavg()[0]] });
    console.error(`${name}: done (load average ${load.toFixed(1)} -> ${os.loadavg()[0].toFixed(1)})`);
  }

  const ms = (v) => (v === null || v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(1));
  const mb = (v) => (v === null || v === undefined ? 'n/a' : (v / MiB).toFixed(0));
  const rows = [];
  for (const r of results) {
    for (const s of r.shapes) {
      const pick = (f) => s.rounds.map(f);
      const dur = pick((x) => x.trim.durationMs);
      const stall = pick((x) => x.loop.maxNoGcMs);
      const base = pick((x) => x.base.maxNoGcMs);
      const stallAll = pick((x) => x.loop.maxMs);
      rows.push([
        `${r.allocator} ${(r.version ?? '').split('-')[0]}${r.arenaTops ? '' : ' (tops off)'}`.trim(),
        s.shape,
        s.chunks ?? 'n/a',
        `${ms(median(dur))} (${ms(Math.max(...dur))})`,
        mb(median(pick((x) => x.trim.releasedBytes))),
        ms(median(pick((x) => x.trim.blockingMs ?? 0))),
        `${ms(median(stall))} (${ms(Math.max(...stall))})`,
        `${ms(median(stallAll))} (${ms(Math.max(...stallAll))})`,
        ms(median(pick((x) => x.loop.p99Ms * 1000))),
        `${ms(median(base))} (${ms(Math.max(...base))})`,
        ms(median(pick((x) => x.base.p99Ms * 1000))),
        s.rounds.filter((x) => x.overran).length,
        `${ms(s.sync.durationMs)}, ${mb(s.sync.releasedBytes)}`,
      ]);
    }
  }
  console.log(`${machine()}; ${ROUNDS} rounds; load average ${os.loadavg()[0].toFixed(1)}\n`);
  console.log(
    table(
      [
        'allocator',
        'heap',
        'free chunks',
        'trim ms median (max)',
        'released MiB',
        'trim() call blocked ms',
        'longest JS malloc during trim, no GC in it: ms median (max)',
        'same, GC included',
        'p99 µs',
        'baseline longest, no GC: ms median (max)',
        'baseline p99 µs',
        'rounds trim outlasted loop',
        'trimSync(): ms (JS thread blocked throughout), MiB',
      ],
      rows,
    ),
  );
  if (process.env.JSON) console.log(JSON.stringify(results));
}

if (process.argv.includes('--child')) await child();
else await parent();
