// What trim() releases on a fragmented heap, and what reading that heap costs.
// Allocates TOTAL_MB of Buffers of SIZE bytes, frees every other one (FREE=all: every one), then
// times snapshot(), snapshot({ detail: true }) and trim (TRIM=sync|async). Run with --expose-gc:
//
//   node --expose-gc bench/trim.mjs
//   SIZE=128 TOTAL_MB=256 node --expose-gc bench/trim.mjs     (many small free chunks)
import { fragstat, median, MiB, settle } from './common.mjs';

const SIZE = Number(process.env.SIZE || 64 * 1024);
const TOTAL = Number(process.env.TOTAL_MB || 1024) * MiB;
const TRIM = process.env.TRIM || 'async';
const FREE = process.env.FREE || 'half'; // or 'all'
const REPEAT = Number(process.env.REPEAT || 5);
const MB = (b) => (b === null ? 'null' : (b / MiB).toFixed(1));

/** Median ms of REPEAT calls of `fn`, and its last result. */
function timed(fn) {
  const times = [];
  let result;
  for (let i = 0; i < REPEAT; i++) {
    const t0 = process.hrtime.bigint();
    result = fn();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return { ms: median(times), result };
}

const count = Math.floor(TOTAL / SIZE);
let bufs = new Array(count);
for (let i = 0; i < count; i++) bufs[i] = Buffer.alloc(SIZE, 1);
await settle();
const full = fragstat.snapshot();
for (let i = FREE === 'all' ? 0 : 1; i < count; i += FREE === 'all' ? 1 : 2) bufs[i] = null;
await settle();

const cheap = timed(() => fragstat.snapshot());
const detail = timed(() => fragstat.snapshot({ detail: true }));
const d = detail.result;
const chunks = d.detail ? d.detail.arenas.reduce((s, a) => s + a.freeChunks, 0) : null;
const t = TRIM === 'sync' ? fragstat.trimSync() : await fragstat.trim();
const after = fragstat.snapshot();

console.log(
  `allocator ${d.allocator}; ${count} Buffers of ${SIZE} B (${MB(count * SIZE)} MB), ${FREE === 'all' ? 'all' : 'every other one'} freed`,
);
console.log(
  `allocated: ${MB(full.allocatedBytes)} MB -> ${MB(d.allocatedBytes)} MB; free ${MB(d.freeBytes)} MB; fragmentation ${d.ratios.fragmentation?.toFixed(3)}; external ${d.ratios.external?.toFixed(4)}; arenas ${d.arenas}; free chunks ${chunks}`,
);
console.log(
  `snapshot(): median ${(cheap.ms * 1e3).toFixed(1)} us; snapshot({ detail: true }): median ${detail.ms.toFixed(2)} ms (${REPEAT} runs)`,
);
console.log(
  `trim (${TRIM}): RSS ${MB(t.rssBeforeBytes)} -> ${MB(t.rssAfterBytes)} MB, released ${MB(t.releasedBytes)} MB in ${t.durationMs?.toFixed(1)} ms, returnValue ${t.returnValue}, JS thread blocked ${t.blockingMs?.toFixed(2)} ms`,
);
console.log(
  `after trim: rss ${MB(after.rssBytes)} MB, allocated ${MB(after.allocatedBytes)} MB, free ${MB(after.freeBytes)} MB`,
);
bufs = null;
