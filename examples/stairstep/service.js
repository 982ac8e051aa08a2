// The stair-step workload: a service that takes JSON bodies of varying size and answers them
// gzip-compressed. zlib works on the libuv pool, so under glibc its buffers spread over several
// arenas; a small cache keeps some responses alive between the ones freed, as real services do.
// STAIRSTEP_AUTOTRIM=1 turns on fragstat's auto-trim.
const http = require('node:http');
const zlib = require('node:zlib');

if (process.env.STAIRSTEP_AUTOTRIM === '1') {
  const fragstat = require('fragstat');
  const m = fragstat.monitor({ intervalMs: 1000, autoTrim: { minIntervalMs: 5000 } });
  m.on('trim', (t) =>
    process.stderr.write(`[service] auto-trim released ${(t.releasedBytes / 1048576).toFixed(0)} MiB\n`),
  );
}

const cache = [];
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString());
    } catch {
      res.writeHead(400).end();
      return;
    }
    const items = Array.isArray(body.items) ? body.items : [];
    const reply = JSON.stringify({
      count: items.length,
      items: items.map((x) => ({ ...x, seen: Date.now() })),
    });
    zlib.gzip(reply, { level: 6 }, (err, out) => {
      if (err) return res.writeHead(500).end();
      cache.push(out);
      if (cache.length > 64) cache.splice(Math.floor(Math.random() * cache.length), 1);
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' }).end(out);
    });
  });
});
server.listen(Number(process.env.PORT) || 0, '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
