// An aggregator on Node's built-in fetch (undici): GET /aggregate?seed=S fetches 3-5 bodies of
// 50 KiB-2 MiB each (count and sizes from a generator seeded by S) in parallel from an upstream
// HTTP server that runs in this same process on another port, hashes each body (SHA-256) and
// answers JSON with the sizes and digests. Sends {port} over IPC once both servers listen.
'use strict';
const crypto = require('node:crypto');
const http = require('node:http');
const { prng, pattern } = require('./prng.cjs');

const KiB = 1024;
const MIN_BYTES = 50 * KiB;
const MAX_BYTES = 2048 * KiB;

// The upstream: GET /blob/<bytes>/<seed> answers `bytes` bytes, a fresh copy of part of a pattern.
const source = pattern(2 * MAX_BYTES, 7);
const upstream = http.createServer((req, res) => {
  const [, , bytes, seed] = req.url.split('/').map(Number);
  const size = Math.min(Math.max(bytes | 0, 1), MAX_BYTES);
  const offset = (seed >>> 0) % (source.length - size);
  const body = Buffer.allocUnsafe(size);
  source.copy(body, 0, offset, offset + size);
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
  res.end(body);
});
upstream.keepAliveTimeout = 60_000;

async function aggregate(seed, upstreamPort) {
  const rand = prng(seed);
  const count = 3 + Math.floor(rand() * 3);
  // Sizes spread evenly on a log scale: many small bodies, some of a few hundred KiB, a few of 2 MiB.
  const sizes = Array.from({ length: count }, () =>
    Math.round(MIN_BYTES * (MAX_BYTES / MIN_BYTES) ** rand()),
  );
  const parts = await Promise.all(
    sizes.map(async (size, i) => {
      const res = await fetch(`http://127.0.0.1:${upstreamPort}/blob/${size}/${seed * 8 + i}`);
      if (!res.ok) throw new Error(`upstream answered ${res.status}`);
      const body = Buffer.from(await res.arrayBuffer());
      return { bytes: body.length, sha256: crypto.createHash('sha256').update(body).digest('hex') };
    }),
  );
  const digest = crypto.createHash('sha256');
  for (const p of parts) digest.update(p.sha256);
  return { seed, bytes: parts.reduce((n, p) => n + p.bytes, 0), parts, digest: digest.digest('hex') };
}

upstream.listen(0, '127.0.0.1', () => {
  const upstreamPort = upstream.address().port;
  const server = http.createServer((req, res) => {
    const seed = Number(new URL(req.url, 'http://x').searchParams.get('seed') || 0);
    aggregate(seed, upstreamPort).then(
      (out) => {
        const body = JSON.stringify(out);
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      },
      (err) => {
        res.writeHead(502);
        res.end(String(err));
      },
    );
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
});
