// A soak: the stair-step service (examples/stairstep) under bursts of JSON load for MINUTES
// (default 10), with a fragstat monitor sampling every second, auto-trim on, and its health and
// metrics endpoints scraped every second. Prints RSS, the allocator's figures and fragstat's own
// memory at the start, the peak and the end, and fails (exit 1) if the service stopped answering.
//
//   nice node bench/soak.mjs          (MINUTES=10)
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { machine, MiB, require, sleep, table } from './common.mjs';

const autocannon = require('autocannon');
const MINUTES = Number(process.env.MINUTES || 10);
const service = fileURLToPath(new URL('./soak-service.cjs', import.meta.url));

function body(kb, v) {
  const items = [];
  const target = ((kb * 1024) / 4) * (1 + (3 * v) / 7);
  for (let i = 0, size = 20; size < target; i++) {
    const item = { id: i, name: `item-${i}-${'x'.repeat((i * 7 + v * 13) % 60)}`, n: i * v };
    items.push(item);
    size += JSON.stringify(item).length + 1;
  }
  return JSON.stringify({ items });
}
const sizes = [16, 64, 256, 1024];
const payloads = Object.fromEntries(
  sizes.map((kb) => [kb, Array.from({ length: 4 }, (_, v) => body(kb, v))]),
);

const child = spawn(process.execPath, [service], {
  env: { ...process.env, SOAK_REPORT_MS: '5000' },
  stdio: ['ignore', 'pipe', 'inherit'],
});
const reports = [];
let url = null;
let buffered = '';
child.stdout.on('data', (d) => {
  buffered += d;
  let nl;
  while ((nl = buffered.indexOf('\n')) >= 0) {
    const line = buffered.slice(0, nl);
    buffered = buffered.slice(nl + 1);
    const m = /listening on (\S+)/.exec(line);
    if (m) url = m[1];
    else if (line.startsWith('{')) reports.push(JSON.parse(line));
  }
});
while (!url) await sleep(50);

const end = Date.now() + MINUTES * 60_000;
let requests = 0;
let errors = 0;
let scrapes = 0;
const scraper = setInterval(() => {
  for (const p of ['/health/memory', '/metrics'])
    fetch(`${url}${p}`).then(
      (r) => (r.ok ? scrapes++ : errors++),
      () => errors++,
    );
}, 1000);
for (let round = 0; Date.now() < end; round++) {
  // A burst of 8 s at one body size and concurrency, then 4 s of rest.
  const kb = sizes[round % sizes.length];
  const r = await autocannon({
    url,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    connections: kb >= 256 ? 32 : 16,
    duration: Math.max(1, Math.min(8, (end - Date.now()) / 1000)),
    requests: payloads[kb].map((b) => ({ body: b })),
  });
  requests += r.requests.total;
  errors += r.errors + r.non2xx;
  await sleep(Math.min(4000, Math.max(0, end - Date.now())));
}
clearInterval(scraper);
await sleep(6000); // one more report after the load
child.kill();

const first = reports[0];
const last = reports[reports.length - 1];
const peak = (k) => Math.max(...reports.map((r) => r[k] ?? 0));
const mib = (b) => (b === null || b === undefined ? 'n/a' : (b / MiB).toFixed(1));
console.log(
  `${machine()}; ${MINUTES} min soak, ${requests} requests, ${scrapes} health/metrics scrapes, ${errors} errors; ` +
    `${reports.length} reports every 5 s\n`,
);
console.log(
  table(
    ['figure', 'start', 'peak', 'end'],
    [
      ['RSS MiB', mib(first.rss), mib(peak('rss')), mib(last.rss)],
      ['malloc allocated MiB', mib(first.allocated), mib(peak('allocated')), mib(last.allocated)],
      ['malloc free MiB', mib(first.free), mib(peak('free')), mib(last.free)],
      ['V8 heap used MiB', mib(first.v8Heap), mib(peak('v8Heap')), mib(last.v8Heap)],
      [
        "monitor history (fragstat's own) KiB",
        (first.historyBytes / 1024).toFixed(0),
        (peak('historyBytes') / 1024).toFixed(0),
        (last.historyBytes / 1024).toFixed(0),
      ],
      ['samples in history', first.samples, peak('samples'), last.samples],
      ['auto-trims', first.trims, peak('trims'), last.trims],
      ['released by trims MiB', mib(first.trimReleased), mib(peak('trimReleased')), mib(last.trimReleased)],
      ['last read ms', first.lastReadMs?.toFixed(2), '', last.lastReadMs?.toFixed(2)],
      ['sampling overhead (share of wall time)', first.overhead.toFixed(5), '', last.overhead.toFixed(5)],
    ],
  ),
);
process.exit(errors > 0 ? 1 : 0);
