// A service that watches its native heap: logs it every minute, exposes Prometheus metrics and
// a health endpoint, and trims automatically when much freed memory piles up.
const http = require('node:http');
const pino = require('pino');
const client = require('prom-client');
const fragstat = require('fragstat');

const log = pino();
const registry = new client.Registry();
fragstat.registerPrometheus(registry);

const monitor = fragstat.monitor({ intervalMs: 60_000, autoTrim: true });
monitor.on('sample', (s) => log.info({ malloc: fragstat.toLogFields(s) }, 'native heap'));
monitor.on('trim', (t) => log.info({ releasedBytes: t.releasedBytes, durationMs: t.durationMs }, 'trimmed'));

const health = fragstat.healthHandler();
const server = http.createServer(async (req, res) => {
  if (req.url === '/health/memory') return health(req, res);
  if (req.url === '/metrics') {
    res.setHeader('content-type', registry.contentType);
    return res.end(await registry.metrics());
  }
  res.end('hello\n');
});
// PORT unset or 0: any free port.
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  log.info(`listening on http://127.0.0.1:${server.address().port}`);
});
