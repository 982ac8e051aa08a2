// Protocol Buffers with protobufjs and logging with pino: POST /batch takes an OrderBatch (20-400
// orders of 1-12 line items, some with a 1-32 KiB attachment), decodes it, prices every order and
// answers a Receipt (a result per order, the orders above 1000 dollars again in full for review).
// pino logs each request through its worker-thread transport (pino/file to /dev/null). Sends
// {port} over IPC once listening.
'use strict';
const http = require('node:http');
const pino = require('pino');
const { OrderBatch, Receipt, Status } = require('./protobuf-schema.cjs');

const logger = pino(pino.transport({ target: 'pino/file', options: { destination: '/dev/null' } }));
const REVIEW_CENTS = 100_000;

function price(batch) {
  let totalCents = 0;
  const results = [];
  const review = [];
  for (const order of batch.orders) {
    let cents = 0;
    let itemCount = 0;
    for (const item of order.items) {
      cents += item.quantity * item.priceCents;
      itemCount += item.quantity;
    }
    const flagged = cents > REVIEW_CENTS || order.status === Status.values.CANCELLED;
    if (flagged) review.push({ ...order, note: `${order.note} [review]` });
    results.push({ id: order.id, totalCents: cents, itemCount, flagged });
    totalCents += cents;
  }
  return { batchId: batch.batchId, totalCents, results, review };
}

const server = http.createServer((req, res) => {
  const t0 = performance.now();
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    try {
      const body = Buffer.concat(chunks);
      const batch = OrderBatch.decode(body);
      const receipt = price(batch);
      const out = Receipt.encode(Receipt.fromObject(receipt)).finish();
      res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': out.length });
      res.end(out);
      logger.info(
        {
          reqId: req.headers['x-request-id'],
          batchId: batch.batchId,
          orders: batch.orders.length,
          review: receipt.review.length,
          totalCents: receipt.totalCents,
          bytesIn: body.length,
          bytesOut: out.length,
          ms: Math.round(performance.now() - t0),
        },
        'batch priced',
      );
    } catch (err) {
      logger.error({ err }, 'bad batch');
      res.writeHead(400);
      res.end(String(err));
    }
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
