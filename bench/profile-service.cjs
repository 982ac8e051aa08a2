// The service bench/profile-overhead.mjs loads: bench/http-service.cjs, plus a heapProfile() every
// PROFILE_EVERY_MS when set, each one's timings appended as a JSON line to PROFILE_LOG.
'use strict';
const fs = require('node:fs');
const { monitorEventLoopDelay } = require('node:perf_hooks');
const fragstat = require('..');

const every = Number(process.env.PROFILE_EVERY_MS || 0);
if (every > 0) {
  const t = setInterval(async () => {
    const h = monitorEventLoopDelay({ resolution: 1 });
    h.enable();
    const start = performance.now();
    const p = await fragstat.heapProfile();
    const totalMs = performance.now() - start;
    h.disable();
    fs.appendFileSync(
      process.env.PROFILE_LOG,
      `${JSON.stringify({ totalMs, dumpMs: p.dumpMs, loopDelayMaxMs: h.max / 1e6, stacks: p.top.length, bytes: p.sampledBytes })}\n`,
    );
  }, every);
  t.unref();
}
require('./http-service.cjs');
