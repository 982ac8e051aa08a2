// An image service on sharp/libvips: GET /resize?src=N&w=W decodes one of the source JPEGs
// generated at start, resizes it to W pixels wide and encodes WebP or JPEG. Sends {port} over IPC
// once listening.
'use strict';
const http = require('node:http');
const sharp = require('sharp');

const SOURCES = 6;
const sources = [];

async function makeSources() {
  for (let i = 0; i < SOURCES; i++) {
    const width = 1000 + 300 * (i % 3);
    const height = 750 + 250 * (i % 2);
    sources.push(
      await sharp({
        create: { width, height, channels: 3, noise: { type: 'gaussian', mean: 120 + i * 10, sigma: 40 } },
      })
        .jpeg({ quality: 85 })
        .toBuffer(),
    );
  }
}

async function handle(req, res) {
  const url = new URL(req.url, 'http://x');
  const src = sources[Number(url.searchParams.get('src') || 0) % SOURCES];
  const w = Number(url.searchParams.get('w') || 800);
  let pipeline = sharp(src)
    .resize({ width: w })
    .rotate(Number(url.searchParams.get('r') || 0));
  pipeline =
    url.searchParams.get('f') === 'jpeg' ? pipeline.jpeg({ quality: 80 }) : pipeline.webp({ quality: 75 });
  const out = await pipeline.toBuffer();
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': out.length });
  res.end(out);
}

makeSources().then(() => {
  const server = http.createServer((req, res) => {
    handle(req, res).catch((err) => {
      res.writeHead(500);
      res.end(String(err));
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
});
