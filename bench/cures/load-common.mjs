// Helpers shared by the load generators (load-<workload>.mjs). Each of those exports `service` (the
// service's file name in this folder), `load(port, latencies, { DURATION })` (runs the load phase,
// pushes each request's latency in ms, returns how many requests completed) and optionally
// `prepare()` (builds request bodies once, before any timing).
import http from 'node:http';
import { sleep } from '../common.mjs';
import prngModule from './prng.cjs';

export const { prng, pattern } = prngModule;

/** Concurrency rising linearly from 1 to `max` over the load phase of DURATION s. */
export const activeAt = (elapsedMs, max, DURATION) =>
  1 + Math.floor(((max - 1) * Math.min(elapsedMs, DURATION * 1000)) / (DURATION * 1000));

/**
 * Runs `max` closed-loop clients for DURATION s, client i active once the rising concurrency
 * reaches it; each calls `request(rand, i)` (rand: its own generator, seeded `seed + i`) in turn.
 */
export async function closedLoop(latencies, { DURATION, max, seed, request }) {
  const began = Date.now();
  let done = 0;
  const client = async (i) => {
    const rand = prng(seed + i);
    while (Date.now() - began < DURATION * 1000) {
      if (i >= activeAt(Date.now() - began, max, DURATION)) {
        await sleep(50);
        continue;
      }
      const t0 = performance.now();
      await request(rand, i);
      latencies.push(performance.now() - t0);
      done++;
    }
  };
  await Promise.all(Array.from({ length: max }, (_, i) => client(i)));
  return done;
}

/** One HTTP request to 127.0.0.1:port; resolves with the response's byte count, rejects unless 200. */
export function httpRequest(agent, port, { method = 'GET', path, body, headers = {} }) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, agent, headers }, (res) => {
      let bytes = 0;
      res.on('data', (d) => (bytes += d.length));
      res.on('end', () =>
        res.statusCode === 200 ? resolve(bytes) : reject(new Error(`${method} ${path}: ${res.statusCode}`)),
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A keep-alive agent for the load's clients. */
export const keepAlive = () => new http.Agent({ keepAlive: true, maxSockets: 64 });
