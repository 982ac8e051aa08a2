// The service bench/profile-overhead.mjs loads: bench/http-service.cjs, plus a heapProfile() every
// PROFILE_EVERY_MS when set, each one's timings appended as a JSON line to PROFILE_LOG, and
// JavaScript frames when JS_FRAMES=1 (run node with --perf-basic-prof). With IDLE_PROFILES=N it
// serves nothing: it keeps 64 MiB of Buffers and 100 zlib streams, takes N profiles one after the
// other, and prints their timings.
'use strict';
const fs = require('node:fs');
const zlib = require('node:zlib');
const { monitorEventLoopDelay } = require('node:perf_hooks');
const fragstat = require('..');

if (process.env.JS_FRAMES === '1') fragstat.setHeapProfilerJsFrames(true);

async function timed() {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const start = performance.now();
  const p = await fragstat.heapProfile();
  const totalMs = performance.now() - start;
  h.disable();
  return { totalMs, dumpMs: p.dumpMs, loopDelayMaxMs: h.max / 1e6, bytes: p.sampledBytes };
}

// The same histogram over an idle wait as long as the profile took: what the machine alone does
// to the event loop in that time (a shared machine delays timers too).
async function control(ms) {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  await new Promise((resolve) => setTimeout(resolve, ms));
  h.disable();
  return h.max / 1e6;
}

const every = Number(process.env.PROFILE_EVERY_MS || 0);
const idle = Number(process.env.IDLE_PROFILES || 0);
if (idle > 0) {
  globalThis.keep = Array.from({ length: 64 }, (_, i) => Buffer.alloc(1024 * 1024, i));
  globalThis.streams = Array.from({ length: 100 }, () => {
    const z = zlib.createDeflate();
    z.write('x');
    return z;
  });
  setTimeout(async () => {
    const out = [];
    for (let i = 0; i < idle; i++) {
      const t = await timed();
      out.push({ ...t, controlDelayMaxMs: await control(t.totalMs) });
    }
    process.stdout.write(`${JSON.stringify(out)}\n`);
    process.exit(0);
  }, 300);
} else {
  if (every > 0) {
    const t = setInterval(async () => {
      fs.appendFileSync(process.env.PROFILE_LOG, `${JSON.stringify(await timed())}\n`);
    }, every);
    t.unref();
  }
  require('./http-service.cjs');
}
