// Cost of a cheap snapshot under every allocator, beside Node's own memory call and beside the
// physical floor. Each allocator runs in its own child process (LD_PRELOAD for all but glibc);
// inside it, every candidate is timed in interleaved rounds so drift on a shared machine hits
// them alike, and the C floor (bench/floor.c, a bare process under the same allocator) runs once
// per round too. Prints one table, allocator x call, as medians and ratios.
// Costs are CPU time (process.cpuUsage() here, CLOCK_PROCESS_CPUTIME_ID in the C floor): time
// spent while another process holds the CPU would count in wall time, not in CPU time.
//
//   node bench/snapshot.mjs                      every allocator found
//   node bench/snapshot.mjs --write docs/PERFORMANCE.md   also replaces the table there
//   ROUNDS=31 CALLS=20000 ALLOCATORS=glibc,jemalloc node bench/snapshot.mjs
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { allocatorEnv, fragstat, median, require, sleep, table } from './common.mjs';

const ROUNDS = Number(process.env.ROUNDS || 21);
const CALLS = Number(process.env.CALLS || 20000);
const self = fileURLToPath(import.meta.url);
const floorSource = fileURLToPath(new URL('./floor.c', import.meta.url));
const floorBin = fileURLToPath(new URL('./floor', import.meta.url));

if (process.argv.includes('--child')) await child();
else await parent();

// ---- one allocator, in this process ---------------------------------------------------------

async function child() {
  const { binding } = require('../dist/binding.js');
  const candidates = {
    memoryUsage: () => process.memoryUsage(),
    memoryUsageRss: () => process.memoryUsage.rss(),
    snapshot: () => fragstat.snapshot(),
    // The same reading through the N-API call alone: figures into the bound array, no JS object.
    bindingSnapshot: () => binding.snapshot(false),
    pread: () => binding.rssBytes(),
    reopen: () => binding.rssBytesReopen(),
  };
  const samples = Object.fromEntries(
    [...Object.keys(candidates), 'nativeReading', 'cFloor', 'cFloorThreads'].map((k) => [k, []]),
  );
  let sink = 0;
  const cFloorRefreshNs = [];
  const cFloorThreadsRefreshNs = [];
  // How much a bare C process must allocate from to walk what this one walks: glibc visits every
  // arena; the others visit the caches of every thread.
  let threads = 1;
  const floor = (n) =>
    JSON.parse(execFileSync(floorBin, [String(CALLS), '3', String(n)], { encoding: 'utf8' }));
  for (let round = 0; round < ROUNDS; round++) {
    if (round === 1) {
      threads =
        fragstat.allocator().name === 'glibc'
          ? fragstat.snapshot({ detail: true }).arenas
          : readdirSync('/proc/self/task').length;
    }
    for (const [name, fn] of Object.entries(candidates)) {
      const c0 = process.cpuUsage();
      for (let i = 0; i < CALLS; i++) sink ^= fn() ? 1 : 0;
      const c = process.cpuUsage(c0);
      if (round > 0) samples[name].push(((c.user + c.system) * 1000) / CALLS); // round 0 warms up
    }
    const c0 = process.cpuUsage();
    binding.rawReadNs(CALLS);
    const c = process.cpuUsage(c0);
    if (round > 0) samples.nativeReading.push(((c.user + c.system) * 1000) / CALLS);
    if (round > 0 && existsSync(floorBin)) {
      const one = floor(1);
      samples.cFloor.push(one.medianNs);
      cFloorRefreshNs.push(one.refreshNs);
      const many = floor(threads);
      samples.cFloorThreads.push(many.medianNs);
      cFloorThreadsRefreshNs.push(many.refreshNs);
    }
  }
  // What one refresh costs in this process, where the allocator caches its figures (jemalloc):
  // the duration of the snapshots that refreshed.
  const refreshMs = [];
  if (fragstat.allocator().name === 'jemalloc') {
    for (let i = 0; i < 40; i++) {
      await sleep(12);
      const s = fragstat.snapshot();
      if (s.statsAgeMs === 0) refreshMs.push(s.durationMs);
    }
  }
  const out = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, v.length ? median(v) : null]));
  const info = fragstat.allocator();
  process.stdout.write(
    JSON.stringify({
      allocator: info.name,
      version: info.version,
      ...out,
      threads,
      refreshNs: refreshMs.length ? median(refreshMs) * 1e6 : null,
      cFloorRefreshNs: cFloorRefreshNs.length && cFloorRefreshNs[0] > 0 ? median(cFloorRefreshNs) : null,
      cFloorThreadsRefreshNs:
        cFloorThreadsRefreshNs.length && cFloorThreadsRefreshNs[0] > 0
          ? median(cFloorThreadsRefreshNs)
          : null,
      sink: sink & 1,
    }),
  );
}

// ---- every allocator, each in a child ---------------------------------------------------------

function buildFloor() {
  try {
    if (!existsSync(floorBin) || statSync(floorBin).mtimeMs < statSync(floorSource).mtimeMs) {
      execFileSync('cc', ['-O2', '-o', floorBin, floorSource, '-ldl', '-lpthread']);
    }
    return true;
  } catch {
    return false; // no C compiler: no C floor column
  }
}

async function parent() {
  const wanted = (process.env.ALLOCATORS || 'glibc,jemalloc,tcmalloc,mimalloc').split(',');
  const haveFloor = buildFloor();
  const results = [];
  for (const name of wanted) {
    const env = allocatorEnv(name);
    if (env === null) continue;
    const load = os.loadavg()[0];
    const out = execFileSync(process.execPath, [self, '--child'], {
      env,
      encoding: 'utf8',
      maxBuffer: 1 << 24,
    });
    const r = JSON.parse(out);
    if (r.allocator !== name) throw new Error(`expected ${name} in the child, found ${r.allocator}`);
    results.push({ ...r, load: [load, os.loadavg()[0]] });
    console.error(`${name}: done`);
  }

  const f0 = (v) => (v === null ? 'n/a' : v.toFixed(0));
  const f2 = (v) => (v === null || !Number.isFinite(v) ? 'n/a' : `${v.toFixed(2)}x`);
  const rows = results.map((r) => [
    `${r.allocator} ${(r.version ?? '').split('-')[0]}`.trim(),
    f0(r.memoryUsage),
    f0(r.snapshot),
    f2(r.snapshot / r.memoryUsage),
    f0(r.cFloor),
    f2(r.cFloor === null ? null : r.snapshot / r.cFloor),
    `${f0(r.cFloorThreads)} (${r.threads})`,
    f2(r.cFloorThreads === null ? null : r.snapshot / r.cFloorThreads),
    f0(r.nativeReading),
    f0(r.bindingSnapshot),
    f0(r.pread),
  ]);
  const header = [
    'allocator',
    'memoryUsage() ns',
    'snapshot() ns',
    'vs memoryUsage()',
    'C floor ns',
    'vs C floor',
    "C floor ns, Node's threads (n)",
    'vs that floor',
    'native reading ns',
    'N-API call ns',
    'pread ns',
  ];
  const us = (ns) => `${(ns / 1000).toFixed(1)} µs`;
  const refresh = results
    .filter((r) => r.refreshNs !== null)
    .map(
      (r) =>
        `${r.allocator}: one statistics refresh (epoch) costs ${us(r.refreshNs)} in the Node process` +
        (r.cFloorRefreshNs
          ? `, ${us(r.cFloorRefreshNs)} in the C floor's process, ${us(r.cFloorThreadsRefreshNs)} with ${r.threads} threads`
          : '') +
        '; a snapshot refreshes at most every 10 ms.',
    );
  const reopen = results.map(
    (r) => `${r.allocator} ${f0(r.reopen)} ns (${f2(r.reopen / r.pread)} the kept descriptor's pread)`,
  );
  const loads = results
    .map((r) => `${r.allocator} ${r.load[0].toFixed(1)}-${r.load[1].toFixed(1)}`)
    .join(', ');
  const cpu = os.cpus()[0]?.model.trim();
  const text = [
    `${os.cpus().length} CPUs (${cpu}), Linux ${os.release()}, node ${process.version}; ` +
      `${ROUNDS - 1} interleaved rounds x ${CALLS} calls per allocator, medians; ` +
      `CPU time; load average (1 min) before-after each: ${loads}.`,
    '',
    table(header, rows),
    '',
    ...(refresh.length ? [...refresh, ''] : []),
    `The RSS read reopening /proc/self/statm on every call instead: ${reopen.join(', ')}.`,
  ].join('\n');
  console.log(text);
  if (!haveFloor) console.error('no C compiler (cc): the C floor was not measured');

  const i = process.argv.indexOf('--write');
  if (i > 0) {
    const file = process.argv[i + 1];
    const begin = '<!-- bench:snapshot begin -->';
    const end = '<!-- bench:snapshot end -->';
    const doc = readFileSync(file, 'utf8');
    const a = doc.indexOf(begin);
    const b = doc.indexOf(end);
    if (a < 0 || b < a) throw new Error(`${file} has no ${begin} ... ${end} section`);
    writeFileSync(file, `${doc.slice(0, a + begin.length)}\n\n${text}\n\n${doc.slice(b)}`);
    console.error(`wrote the table into ${file}`);
  }
}
