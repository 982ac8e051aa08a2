// ws: WebSocket connections with permessage-deflate rising from 1 to 48, each sending 50-1550-item
// JSON messages in a closed loop; all close at the end.
import { createRequire } from 'node:module';
import { sleep } from '../common.mjs';
import { activeAt, prng } from './load-common.mjs';

const WebSocket = createRequire(import.meta.url)('ws');

export const service = 'ws-service.cjs';

export async function load(port, latencies, { DURATION }) {
  const MAX = 48;
  const began = Date.now();
  let done = 0;
  const sockets = [];
  const client = async (i) => {
    while (i >= activeAt(Date.now() - began, MAX, DURATION)) {
      if (Date.now() - began >= DURATION * 1000) return;
      await sleep(50);
    }
    const rand = prng(2000 + i);
    const ws = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: true });
    sockets.push(ws);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    while (Date.now() - began < DURATION * 1000) {
      const n = 50 + Math.floor(rand() * 1500);
      const items = Array.from({ length: n }, (_, k) => ({ id: k, name: `item-${i}-${k}`, value: rand() }));
      const t0 = performance.now();
      await new Promise((resolve) => {
        ws.once('message', resolve);
        ws.send(JSON.stringify({ from: i, items }));
      });
      latencies.push(performance.now() - t0);
      done++;
    }
  };
  await Promise.all(Array.from({ length: MAX }, (_, i) => client(i)));
  // Close every connection: the service's deflate streams are freed, as after a traffic burst.
  await Promise.all(
    sockets.map(
      (ws) =>
        new Promise((resolve) =>
          ws.readyState === WebSocket.CLOSED ? resolve() : (ws.once('close', resolve), ws.close()),
        ),
    ),
  );
  return done;
}
