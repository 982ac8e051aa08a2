// sharp: 1 to 6 keep-alive clients, each asking for one of six source JPEGs resized to 200-1600
// pixels wide, rotated by 0, 90 or 180 degrees, as WebP (70%) or JPEG (30%).
import { closedLoop, httpRequest, keepAlive } from './load-common.mjs';

export const service = 'sharp-service.cjs';

export async function load(port, latencies, { DURATION }) {
  const agent = keepAlive();
  const done = await closedLoop(latencies, {
    DURATION,
    max: 6,
    seed: 1000,
    request: (rand) => {
      const q = `src=${Math.floor(rand() * 6)}&w=${200 + Math.floor(rand() * 1400)}&f=${rand() < 0.3 ? 'jpeg' : 'webp'}&r=${[0, 90, 180][Math.floor(rand() * 3)]}`;
      return httpRequest(agent, port, { path: `/resize?${q}` });
    },
  });
  agent.destroy();
  return done;
}
