// The service bench/soak.mjs loads: the stair-step example with a fragstat monitor (every second,
// auto-trim on, a trim at most every 5 s as in the example), its health endpoint and Prometheus
// metrics on the same server's /health/memory and /metrics. Every SOAK_REPORT_MS it writes one
// JSON line to stdout: the process's memory, the monitor's figures, and fragstat's own share.
'use strict';
const http = require('node:http');
const path = require('node:path');
const v8 = require('node:v8');
const fragstat = require(path.join(__dirname, '..'));
const client = require('prom-client');

const m = fragstat.monitor({ intervalMs: 1000, autoTrim: { minIntervalMs: 5000 } });
const registry = new client.Registry();
fragstat.registerPrometheus(registry);
const health = fragstat.healthHandler();

// The example's server, with two routes of fragstat's put in front of its handler.
const listen = http.Server.prototype.listen;
http.Server.prototype.listen = function (...args) {
  const app = this.listeners('request')[0];
  this.removeAllListeners('request');
  this.on('request', (req, res) => {
    if (req.url === '/health/memory') return void health(req, res);
    if (req.url === '/metrics') return void registry.metrics().then((t) => res.end(t));
    app(req, res);
  });
  http.Server.prototype.listen = listen;
  return listen.apply(this, args);
};
require('../examples/stairstep/service.js');

const report = () => {
  const mem = process.memoryUsage();
  const s = m.latest();
  const st = m.stats();
  // What fragstat itself keeps: the monitor's history (its samples, as JSON bytes) and the
  // allocator read's own cost.
  const historyBytes = Buffer.byteLength(JSON.stringify(m.history()));
  process.stdout.write(
    `${JSON.stringify({
      t: Date.now(),
      rss: mem.rss,
      v8Heap: v8.getHeapStatistics().used_heap_size,
      external: mem.external,
      allocated: s && s.allocatedBytes,
      free: s && s.freeBytes,
      samples: st.samples,
      trims: st.trims,
      trimReleased: st.trimReleasedBytes,
      historyBytes,
      lastReadMs: m.budget().lastSampleMs,
      overhead: m.budget().overhead,
    })}\n`,
  );
};
setInterval(report, Number(process.env.SOAK_REPORT_MS || 10_000));
