// The service bench/flood.mjs floods: a heap with N/2 free chunks (N small Buffers, every other
// one freed), a route that does the application's own work (a 2 KiB malloc per request), the
// health endpoint and Prometheus metrics, and a monitor at its default interval unless
// MONITOR=0. FRAG names the fragstat package to load (default: this checkout).
'use strict';
const http = require('node:http');
const path = require('node:path');
const { monitorEventLoopDelay } = require('node:perf_hooks');
const fragstat = require(process.env.FRAG || path.join(__dirname, '..'));
const client = require('prom-client');

const N = Number(process.env.N || 2e6);
const bufs = new Array(N);
for (let i = 0; i < N; i++) bufs[i] = Buffer.alloc(128, 1);
for (let i = 1; i < N; i += 2) bufs[i] = null;
globalThis.KEEP = bufs;
global.gc();
global.gc();

const registry = new client.Registry();
fragstat.registerPrometheus(registry);
const health = fragstat.healthHandler();
const monitor = process.env.MONITOR === '0' ? null : fragstat.monitor();

const loop = monitorEventLoopDelay({ resolution: 1 });
let floodCalls = 0;
const server = http.createServer((req, res) => {
  if (req.url === '/health/memory') {
    floodCalls++;
    return void health(req, res);
  }
  if (req.url === '/metrics') {
    floodCalls++;
    return void registry.metrics().then((text) => res.end(text));
  }
  if (req.url === '/stats') {
    const o = {
      p99Ms: loop.percentile(99) / 1e6,
      maxMs: loop.max / 1e6,
      floodCalls,
    };
    loop.reset();
    floodCalls = 0;
    return void res.end(JSON.stringify(o));
  }
  const b = Buffer.allocUnsafeSlow(2048); // the application's own work mallocs
  b.fill(1);
  res.end(b.subarray(0, 16));
});

server.listen(0, '127.0.0.1', async () => {
  // Wait for the monitor's first sample (the one walk it makes at start), then measure.
  if (monitor) await new Promise((resolve) => monitor.once('sample', resolve));
  const s = fragstat.snapshot({ detail: true });
  const freeChunks = s.detail ? s.detail.arenas.reduce((a, x) => a + x.freeChunks, 0) : null;
  const t = performance.now();
  fragstat.snapshot();
  const walkMs = performance.now() - t;
  loop.enable();
  process.stdout.write(`${JSON.stringify({ port: server.address().port, freeChunks, walkMs })}\n`);
});
