// Loaded first by each service (node -r): applies the cure named by CURE and answers the driver's
// IPC requests ('gc': collect; 'trims': how many trims the cure made, with V8's heap and the
// monitor's stats).
'use strict';
const fragstat = require('../..');

let trims = 0;
let monitor = null;
const cure = process.env.CURE || 'none';
// Experiments: CURE_TUNE is passed to fragstat.tune() at start, CURE_AUTOTRIM to monitor({ autoTrim }).
if (process.env.CURE_TUNE) fragstat.tune(JSON.parse(process.env.CURE_TUNE));
if (cure === 'monitor') {
  // fragstat's defaults with auto-trim on, as a user would write it.
  const m = (monitor = fragstat.monitor({
    autoTrim: process.env.CURE_AUTOTRIM ? JSON.parse(process.env.CURE_AUTOTRIM) : true,
  }));
  m.on('trim', () => trims++);
  if (process.env.CURE_DEBUG) {
    const MiB = 1048576;
    let cpu = process.cpuUsage();
    m.on('sample', (x) => {
      const used = process.cpuUsage(cpu);
      cpu = process.cpuUsage();
      console.error(
        `[cure] rss ${(x.rssBytes / MiB).toFixed(0)} alloc ${(x.allocatedBytes / MiB).toFixed(0)} free ${(x.freeBytes / MiB).toFixed(0)} v8 ${(x.v8HeapBytes / MiB).toFixed(0)} cpu ${((used.user + used.system) / 1e6).toFixed(1)} s ${JSON.stringify(m.stats().trimsBy)}`,
      );
    });
    m.on('trim', (t) => console.error(`[cure] trim released ${(t.releasedBytes / MiB).toFixed(0)} MiB`));
  }
  m.on('error', () => {});
} else if (cure === 'periodic') {
  // The hand-rolled cure: malloc_trim every 5 s whatever happens.
  setInterval(() => {
    fragstat.trim().then(
      () => trims++,
      () => {},
    );
  }, 5000).unref();
} else if (cure !== 'none') {
  throw new Error(`unknown CURE ${cure}`);
}

process.on('message', (msg) => {
  if (msg === 'gc') {
    for (let i = 0; i < 3; i++) globalThis.gc();
    // Backing stores are freed after the GC, partly on a background thread.
    setTimeout(() => {
      globalThis.gc();
      process.send({ gc: true });
    }, 200);
  } else if (msg === 'trims') {
    // With where the idle memory sits: under glibc, the free bytes in the main arena's top chunk,
    // in thread arenas' top chunks (which malloc_trim cannot shrink) and in chunks elsewhere.
    const where = {};
    if (fragstat.allocator().name === 'glibc') {
      const s = fragstat.snapshot({ detail: true });
      const arenas = s.detail?.arenas ?? [];
      const MiB = 1048576;
      where.arenas = arenas.length;
      where.mainTopMiB = (arenas.find((a) => a.index === 0)?.topBytes ?? 0) / MiB;
      where.threadTopsMiB = arenas.filter((a) => a.index !== 0).reduce((x, a) => x + a.topBytes, 0) / MiB;
      where.freeMiB = (s.freeBytes ?? 0) / MiB;
      where.allocatedMiB = (s.allocatedBytes ?? 0) / MiB;
    }
    const { heapTotal, heapUsed } = process.memoryUsage();
    const stats = monitor?.stats() ?? null;
    process.send({
      trims,
      trimsBy: stats?.trimsBy ?? null,
      allocator: fragstat.allocator().name,
      where,
      v8: { heapTotal, heapUsed },
      monitor: stats,
    });
  }
});
