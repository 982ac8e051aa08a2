// ssr: 1 to 8 keep-alive clients that accept gzip, each asking for catalogue pages of 50-1500 items.
import { closedLoop, httpRequest, keepAlive } from './load-common.mjs';

export const service = 'ssr-service.cjs';

export async function load(port, latencies, { DURATION }) {
  const agent = keepAlive();
  const done = await closedLoop(latencies, {
    DURATION,
    max: 8,
    seed: 4000,
    request: (rand) =>
      httpRequest(agent, port, {
        path: `/page?n=${50 + Math.floor(rand() * 1451)}&seed=${Math.floor(rand() * 2 ** 31)}`,
        headers: { 'accept-encoding': 'gzip' },
      }),
  });
  agent.destroy();
  return done;
}
