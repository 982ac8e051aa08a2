// sqlite: 1 to 16 keep-alive clients; 40% of requests store a 1-100 KiB blob under one of 2000 keys,
// 60% read the blobs of 1-10 keys.
import { closedLoop, httpRequest, keepAlive, pattern } from './load-common.mjs';

export const service = 'sqlite-service.cjs';
const KiB = 1024;
const KEYS = 2000;
const source = pattern(256 * KiB, 5);

export async function load(port, latencies, { DURATION }) {
  const agent = keepAlive();
  const done = await closedLoop(latencies, {
    DURATION,
    max: 16,
    seed: 5000,
    request: (rand) => {
      const key = Math.floor(rand() * KEYS);
      if (rand() < 0.4) {
        const size = KiB + Math.floor(rand() * 99 * KiB);
        const offset = Math.floor(rand() * (source.length - size));
        return httpRequest(agent, port, {
          method: 'PUT',
          path: `/blob/${key}`,
          body: source.subarray(offset, offset + size),
        });
      }
      return httpRequest(agent, port, { path: `/blobs/${key}/${1 + Math.floor(rand() * 10)}` });
    },
  });
  agent.destroy();
  return done;
}
