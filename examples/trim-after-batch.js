// A batch job that frees a lot, then gives the memory back and says how much.
// Run: node --expose-gc examples/trim-after-batch.js (gc() stands in for the collections a
// long job gets anyway: freed Buffers return to malloc only when V8 collects them).
const fragstat = require('fragstat');

let batch = [];
for (let i = 0; i < 4096; i++) batch.push(Buffer.alloc(64 * 1024, 1)); // 256 MiB of Buffers
batch = batch.filter((_, i) => i % 2 === 0); // the job keeps every other one
globalThis.gc?.();

setTimeout(async () => {
  const before = await fragstat.snapshotAsync();
  const t = await fragstat.trim();
  const mib = (b) => `${(b / 1048576).toFixed(0)} MiB`;
  console.log(
    `${before.allocator}: ${mib(before.freeBytes)} free (${(before.ratios.fragmentation * 100).toFixed(0)}% of the heap)`,
  );
  console.log(
    `trim released ${mib(t.releasedBytes)} of RSS in ${t.durationMs.toFixed(1)} ms (kept ${batch.length} Buffers)`,
  );
}, 500);
