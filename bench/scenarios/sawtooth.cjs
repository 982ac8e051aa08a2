// sawtooth: an express inventory service under light steady load, with a batch job every 20 s, in
// a worker thread, that allocates ~100-130 MiB (48 MiB of Buffers, a gzip of 16 MiB of them, an
// array of 250,000 row objects and its JSON text), holds it for 6 s, then drops it all and exits.
// Expected verdict: fragmentation, never a leak. A periodic batch that frees what it took leaks
// nothing, but under glibc the memory each batch freed stays resident in the arenas: the troughs
// between batches rise after the first one and stay there, with live malloc bytes and V8's heap
// back where they were (recorded: 68 MiB before the first batch, 144-147 MiB after every later
// one). That is what a trim gives back. Under jemalloc with its background thread it would be
// stable; burst-idle-jemalloc shows that case.
'use strict';

exports.scenario = {
  expected: 'fragmentation',
  notes:
    'express under light load (20 requests/s) + a batch every 20 s allocating ~100-130 MiB (Buffers, ' +
    'zlib.gzip, a 250,000-object array and its JSON) in a worker thread, held 6 s, then dropped as the ' +
    'worker exits.',
  phases: [
    { name: 'idle-before', seconds: 10 },
    {
      name: 'steady',
      seconds: 260,
      load: { connections: 4, overallRate: 20, path: () => `/items/${Math.floor(Math.random() * 1000)}` },
    },
  ],
};

async function runBatch(n) {
  const zlib = require('node:zlib');
  const { promisify } = require('node:util');
  let buffers = Array.from({ length: 48 }, (_, i) => Buffer.alloc(1024 * 1024, (n + i) & 0xff));
  let rows = Array.from({ length: 250_000 }, (_, i) => ({
    id: i,
    batch: n,
    name: `row ${i}`,
    value: i * 1.5,
  }));
  let json = JSON.stringify(rows);
  let packed = await promisify(zlib.gzip)(Buffer.concat(buffers.slice(0, 16)));
  await new Promise((r) => setTimeout(r, 6000)); // the results are held while they "upload"
  parentPort.postMessage(
    `${buffers.length} MiB buffers, ${json.length} chars of JSON, ${packed.length} B gzip`,
  );
  buffers = rows = json = packed = null; // dropped; the worker then exits and its heap goes
}

function main() {
  const express = require('express');
  const items = Array.from({ length: 1000 }, (_, i) => ({
    id: i,
    name: `item ${i}`,
    stock: i % 17,
    price: i / 4,
  }));
  const app = express();
  app.get('/items/:id', (req, res) => {
    const item = items[Number(req.params.id) % items.length];
    res.json({ ...item, related: items.slice(item.id, item.id + 5).map((x) => x.id) });
  });

  // Each batch runs in a worker thread that exits when done: dropping its results frees them at
  // once. (Run on the main thread, the dropped batch stays in memory until a major GC, which a
  // lightly loaded service puts off until the next batch: RSS then never comes down.)
  let batch = 0;
  setInterval(() => {
    const n = ++batch;
    console.log(`event batch-start ${n}`);
    const worker = new Worker(__filename, { workerData: { batch: n } });
    let done = '';
    worker.on('message', (m) => (done = m));
    worker.on('exit', () => console.log(`event batch-end ${n} (${done})`));
    worker.on('error', (err) => console.error(err));
  }, 20_000);

  const server = app.listen(0, '127.0.0.1', () => {
    console.log(`listening on http://127.0.0.1:${server.address().port}`);
  });
}

const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads');
if (!isMainThread && workerData?.batch) runBatch(workerData.batch);
else if (require.main === module) main();
