// What a monitor costs a busy service: throughput and p99 latency of an HTTP service (JSON in,
// gzip out) with no monitor and with a monitor sampling every second, alternating runs so the
// machine's drift hits both alike. Prints medians and the ratio.
//
//   node bench/http.mjs            (RUNS=6, DURATION=8 seconds, CONNECTIONS=32)
import { fileURLToPath } from 'node:url';
import { driveJsonService, machine, median, table } from './common.mjs';

const RUNS = Number(process.env.RUNS || 6);
const DURATION = Number(process.env.DURATION || 8);
const CONNECTIONS = Number(process.env.CONNECTIONS || 32);
const service = fileURLToPath(new URL('./http-service.cjs', import.meta.url));

async function once(env) {
  const r = await driveJsonService([service], env, { connections: CONNECTIONS, duration: DURATION });
  return { rps: r.requests.average, p99: r.latency.p99, errors: r.errors + r.non2xx };
}

const configs = {
  'no monitor': {},
  'monitor every 1 s': { MONITOR_MS: '1000' },
  'monitor every 1 s, detail': { MONITOR_MS: '1000', MONITOR_DETAIL: '1' },
};
const results = Object.fromEntries(Object.keys(configs).map((k) => [k, []]));
for (let r = 0; r < RUNS; r++) {
  for (const [name, env] of Object.entries(configs)) results[name].push(await once(env));
}
const base = results['no monitor'];
console.log(
  `${machine()}; ${RUNS} runs of ${DURATION} s per configuration, ${CONNECTIONS} connections, alternating\n`,
);
console.log(
  table(
    ['configuration', 'req/s (median)', 'vs none', 'p99 ms (median)', 'p99 range ms', 'errors'],
    Object.entries(results).map(([name, xs]) => [
      name,
      median(xs.map((x) => x.rps)).toFixed(0),
      (median(xs.map((x) => x.rps)) / median(base.map((x) => x.rps))).toFixed(3),
      median(xs.map((x) => x.p99)).toFixed(1),
      `${Math.min(...xs.map((x) => x.p99))}-${Math.max(...xs.map((x) => x.p99))}`,
      xs.reduce((s, x) => s + x.errors, 0),
    ]),
  ),
);
