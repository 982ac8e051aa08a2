// fetch: 1 to 12 keep-alive clients, each asking the aggregator for a seeded set of upstream bodies.
import { closedLoop, httpRequest, keepAlive } from './load-common.mjs';

export const service = 'fetch-service.cjs';

export async function load(port, latencies, { DURATION }) {
  const agent = keepAlive();
  const done = await closedLoop(latencies, {
    DURATION,
    max: 12,
    seed: 3000,
    request: (rand) => httpRequest(agent, port, { path: `/aggregate?seed=${Math.floor(rand() * 2 ** 31)}` }),
  });
  agent.destroy();
  return done;
}
