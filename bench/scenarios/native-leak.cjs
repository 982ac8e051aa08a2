// native-leak: an express thumbnail service that leaks native memory. GET /thumb/<id> decodes one
// of four 1024x768 JPEGs (made at start) with sharp, resizes it to a 320 px JPEG thumbnail, sends
// it, and keeps the thumbnail Buffer in a module-level Map forever (sharp's output: malloc'd outside
// V8's heap). Every second request also opens a zlib gzip stream, writes 64 KiB of text into it and
// never ends it: its deflate state and pending data stay referenced, in native memory too.
// Expected verdict: native-growth (RSS grows steadily; live malloc bytes explain most of it, V8's
// heap little).
'use strict';

exports.scenario = {
  expected: 'native-growth',
  // A pool larger than the load's 8 connections: fragstat's detail reading reads /proc/self/smaps
  // on the same pool, and counts the wait behind sharp's jobs as its own cost (see README.md).
  env: { UV_THREADPOOL_SIZE: '16' },
  notes:
    'express + sharp: each request keeps a ~13 KB JPEG thumbnail Buffer in a Map forever; every ' +
    'second request opens a gzip stream, writes 64 KiB of text and never ends it. 4 requests/s.',
  phases: [
    { name: 'idle-before', seconds: 10 },
    {
      name: 'leak',
      seconds: 240,
      load: { connections: 8, overallRate: 4, path: () => `/thumb/${Math.floor(Math.random() * 1e6)}` },
    },
  ],
};

function main() {
  const express = require('express');
  const sharp = require('sharp');
  const zlib = require('node:zlib');
  const crypto = require('node:crypto');

  const sources = []; // the "uploaded" originals: four 1024x768 JPEGs of noise, made at start
  const thumbnails = new Map(); // the leak: never evicted
  const openStreams = []; // the second leak: gzip streams never ended
  let served = 0;

  const app = express();
  app.get('/thumb/:id', async (req, res, next) => {
    try {
      const seed = Number(req.params.id) || 0;
      const thumb = await sharp(sources[seed % sources.length])
        .resize({ width: 320 })
        .jpeg({ quality: 85 })
        .toBuffer();
      thumbnails.set(`${req.params.id}:${served}`, thumb);
      if (++served % 2 === 0) {
        const gz = zlib.createGzip();
        // Hex text: compressible, unlike raw random bytes.
        gz.write(crypto.randomBytes(32 * 1024).toString('hex'));
        openStreams.push(gz);
      }
      res.type('image/jpeg').send(thumb);
    } catch (err) {
      next(err);
    }
  });
  (async () => {
    for (let i = 0; i < 4; i++) {
      const noise = { type: 'gaussian', mean: 100 + i * 20, sigma: 30 };
      sources.push(
        await sharp({ create: { width: 1024, height: 768, channels: 3, noise } })
          .jpeg({ quality: 90 })
          .toBuffer(),
      );
    }
    const server = app.listen(0, '127.0.0.1', () => {
      console.log(`listening on http://127.0.0.1:${server.address().port}`);
    });
  })();
}

if (require.main === module) main();
