// protobuf: 1 to 12 keep-alive clients posting OrderBatch messages, picked from 64 batches encoded
// once before the runs (20-400 orders of 1-12 line items each, a fifth with a 1-32 KiB attachment).
import { createRequire } from 'node:module';
import { closedLoop, httpRequest, keepAlive, pattern, prng } from './load-common.mjs';

export const service = 'protobuf-service.cjs';
const { OrderBatch } = createRequire(import.meta.url)('./protobuf-schema.cjs');
const KiB = 1024;
const WORDS = 'north south river stone cloud field harbor forest lake hill valley bridge'.split(' ');
let bodies = null;

export function prepare() {
  const rand = prng(6000);
  const word = () => WORDS[Math.floor(rand() * WORDS.length)];
  const blob = pattern(64 * KiB, 6);
  bodies = Array.from({ length: 64 }, (_, b) => {
    const orders = Array.from({ length: 20 + Math.floor(rand() * 381) }, (_, o) => ({
      id: b * 1000 + o,
      customer: {
        id: Math.floor(rand() * 1e6),
        name: `${word()} ${word()}`,
        email: `${word()}.${o}@example.com`,
        address: { street: `${1 + o} ${word()} street`, city: word(), zip: String(10000 + o), country: 'NL' },
        tags: Array.from({ length: Math.floor(rand() * 4) }, word),
      },
      items: Array.from({ length: 1 + Math.floor(rand() * 12) }, (_, i) => ({
        sku: `SKU-${b}-${o}-${i}`,
        title: `${word()} ${word()} ${word()}`,
        quantity: 1 + Math.floor(rand() * 5),
        priceCents: 100 + Math.floor(rand() * 30000),
        attributes: { colour: word(), size: ['S', 'M', 'L'][i % 3] },
      })),
      status: Math.floor(rand() * 4),
      note: Array.from({ length: Math.floor(rand() * 12) }, word).join(' '),
      attachment: rand() < 0.2 ? blob.subarray(0, KiB + Math.floor(rand() * 31 * KiB)) : Buffer.alloc(0),
      createdAtMs: 1.7e12 + o * 1000,
    }));
    return Buffer.from(OrderBatch.encode(OrderBatch.fromObject({ batchId: b, orders })).finish());
  });
}

export async function load(port, latencies, { DURATION }) {
  const agent = keepAlive();
  let requestId = 0;
  const done = await closedLoop(latencies, {
    DURATION,
    max: 12,
    seed: 7000,
    request: (rand, i) =>
      httpRequest(agent, port, {
        method: 'POST',
        path: '/batch',
        body: bodies[Math.floor(rand() * bodies.length)],
        headers: { 'content-type': 'application/x-protobuf', 'x-request-id': `${i}-${requestId++}` },
      }),
  });
  agent.destroy();
  return done;
}
