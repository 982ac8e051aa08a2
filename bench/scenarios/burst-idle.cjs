// burst-idle: an express service doing heavy image and compression work in bursts, keeping
// nothing. GET /work/<seed> decodes one of three large JPEGs (2000-2800 px wide, made at start)
// with sharp and resizes it to 800 px WebP while, in parallel, gzipping a 1-4 MiB buffer of random
// words with zlib.gzip (the callback API: the deflate runs on libuv's pool). UV_THREADPOOL_SIZE=16 and libvips' own threads spread
// the allocations over many glibc arenas. Three bursts of load, each followed by idle, then a
// long idle; sharp's cache is off, so nothing is retained between requests.
// Expected verdict under glibc: fragmentation (idle RSS stays well above where it started while
// live malloc bytes fall back: glibc keeps the freed memory resident).
// Run with --allocator jemalloc (scenario burst-idle-jemalloc), expected: stable (its background
// thread returns the freed pages while idle, RSS comes back down).
'use strict';

const burst = (n) => ({
  name: `burst-${n}`,
  seconds: 20,
  // 6 connections, two pool jobs each: 12 of the 16 pool threads, leaving room for fragstat's own
  // reads of /proc/self/smaps, which queue on the same pool (see README.md).
  load: { connections: 6, path: () => `/work/${Math.floor(Math.random() * 1e6)}` },
});
const idle = (n, seconds) => ({ name: `idle-${n}`, seconds });

exports.scenario = {
  expected: 'fragmentation',
  env: { UV_THREADPOOL_SIZE: '16' },
  notes:
    'express + sharp + zlib.gzip on a 16-thread pool: 3 bursts of 20 s of heavy work, each followed by ' +
    '35 s idle, then 60 s idle; nothing retained (sharp.cache(false)).',
  phases: [
    idle('before', 10),
    burst(1),
    idle(1, 35),
    burst(2),
    idle(2, 35),
    burst(3),
    idle(3, 35),
    idle('final', 60),
  ],
  // The same service and load under jemalloc (fragstat run turns its background thread on).
  jemalloc: {
    allocator: 'jemalloc',
    expected: 'stable',
    notes:
      'The burst-idle service and load under jemalloc with background_thread:true (set by fragstat ' +
      'run): freed pages go back to the system while idle.',
  },
};

function main() {
  const express = require('express');
  const sharp = require('sharp');
  const zlib = require('node:zlib');
  const crypto = require('node:crypto');

  sharp.cache(false); // nothing retained between requests
  const sources = []; // the originals: three large JPEGs of noise (2000-2800 px wide), made at start

  // 64 KiB of random words; request bodies are slices of it copied at random offsets.
  const words = [];
  while (words.join(' ').length < 64 * 1024)
    words.push(crypto.randomBytes(3 + (words.length % 6)).toString('base64'));
  const vocabulary = Buffer.from(words.join(' '));

  function randomText(size) {
    const out = Buffer.allocUnsafe(size);
    for (let at = 0; at < size;) {
      const from = Math.floor(Math.random() * (vocabulary.length - 4096));
      at += vocabulary.copy(
        out,
        at,
        from,
        from + Math.min(512 + Math.floor(Math.random() * 3584), size - at),
      );
    }
    return out;
  }

  const gzip = (buf) =>
    new Promise((resolve, reject) => zlib.gzip(buf, (err, out) => (err ? reject(err) : resolve(out))));

  const app = express();
  app.get('/work/:seed', async (req, res, next) => {
    try {
      const seed = Number(req.params.seed) || 0;
      const [image, packed] = await Promise.all([
        sharp(sources[seed % sources.length])
          .resize({ width: 800 })
          .webp({ quality: 75 })
          .toBuffer(),
        gzip(randomText((1 + (seed % 4)) * 1024 * 1024)),
      ]);
      res.json({ image: image.length, gzip: packed.length });
    } catch (err) {
      next(err);
    }
  });
  (async () => {
    for (let i = 0; i < 3; i++) {
      const noise = { type: 'gaussian', mean: 128, sigma: 40 };
      const create = { width: 2000 + i * 400, height: 1500 + i * 200, channels: 3, noise };
      sources.push(await sharp({ create }).jpeg({ quality: 90 }).toBuffer());
    }
    const server = app.listen(0, '127.0.0.1', () => {
      console.log(`listening on http://127.0.0.1:${server.address().port}`);
    });
  })();
}

if (require.main === module) main();
