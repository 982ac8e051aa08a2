// The service bench/http.mjs loads: JSON in, gzip out (zlib runs on the libuv pool, so glibc
// spreads its buffers over arenas). MONITOR_MS turns on a fragstat monitor at that interval.
'use strict';
const http = require('node:http');
const zlib = require('node:zlib');
const fragstat = require('..');

if (process.env.MONITOR_MS) {
  const m = fragstat.monitor({
    intervalMs: Number(process.env.MONITOR_MS),
    detail: process.env.MONITOR_DETAIL === '1',
  });
  m.on('sample', () => {});
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString() || '{}');
    } catch {
      res.writeHead(400).end();
      return;
    }
    const reply = JSON.stringify({ ok: true, echo: body, at: Date.now() });
    zlib.gzip(reply, (err, out) => {
      if (err) return res.writeHead(500).end();
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' }).end(out);
    });
  });
});
server.listen(Number(process.env.PORT) || 0, '127.0.0.1', () => {
  process.stdout.write(`listening on http://127.0.0.1:${server.address().port}\n`);
});
