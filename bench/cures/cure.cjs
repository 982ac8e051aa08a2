// Loaded first by each service (node -r): applies the cure named by CURE and answers the driver's
// IPC requests ('gc': collect; 'trims': how many trims the cure made).
'use strict';
const fragstat = require('../..');

let trims = 0;
const cure = process.env.CURE || 'none';
if (cure === 'monitor') {
  // fragstat's defaults with auto-trim on, as a user would write it.
  const m = fragstat.monitor({ autoTrim: true });
  m.on('trim', () => trims++);
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
    process.send({ trims, allocator: fragstat.allocator().name });
  }
});
