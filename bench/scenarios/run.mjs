// Records the scenario services of this directory under `fragstat run`, as fixtures with a known
// verdict for the classifier's tests (test/fixtures/scenarios/<name>.ndjson).
//
//   node bench/scenarios/run.mjs                     # every scenario, one after another (npm run bench:scenarios)
//   node bench/scenarios/run.mjs js-leak sawtooth    # some of them
//   node bench/scenarios/run.mjs cache-plateau --scale 0.2 --out-dir /tmp/s   # a quick try
//
// Per scenario: starts `node bin/fragstat.js run --interval 1s --out <tmp> -- node
// bench/scenarios/<svc>.cjs` (with --allocator jemalloc where the scenario asks), waits for the
// service to print "listening on http://127.0.0.1:<port>", drives the scenario's phases with
// autocannon (or leaves it idle), sends SIGTERM to the CLI, waits for it to exit, then writes the
// recording: one header line (scenario, expected verdict, phases, versions; it has no
// `timestamp`, so readers of samples skip it) followed by the CLI's lines.
//
// Options:
//   --strip auto|always|never  cut each sample line to the fields a classifier reads (below) so a
//                              fixture stays small; auto (default) does it when the recording is
//                              over 400 KB. The header says whether it was done.
//   --scale <f>                multiply every phase's length (a short trial run: 0.2)
//   --out-dir <dir>            where the recordings go (default test/fixtures/scenarios)
//   --detail                   run with --detail, into <name>-detail.ndjson: every glibc sample then
//                              walks the heap (malloc_info) and reads smaps, which takes up to hundreds
//                              of ms under load and stretches the interval; without it (the default,
//                              as fragstat run's) the monitor reads residentFreeBytes every 10 s
//   --reheader                 record nothing: rebuild the header line of the named recordings
//                              (notes, checks) from their samples, phases and events
//   --table                    record nothing: print the summary table of the recordings in
//                              --out-dir (the one in README.md)
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const autocannon = require('autocannon');
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const MiB = 1024 * 1024;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const names = ['native-leak', 'js-leak', 'burst-idle', 'cache-plateau', 'sawtooth', 'burst-idle-jemalloc'];
// The sample fields a classifier can use; everything else (detail arenas, raw mallinfo) goes.
const kept = [
  'timestamp',
  'rssBytes',
  'allocatedBytes',
  'freeBytes',
  'residentFreeBytes',
  'heapBytes',
  'v8HeapBytes',
  'intervalMs',
  'durationMs',
  'arenas',
  'final',
  'allocator',
];
const STRIP_OVER = 400 * 1024;

function parseArgs(argv) {
  const o = {
    scenarios: [],
    detail: false,
    strip: 'auto',
    scale: 1,
    outDir: path.join(root, 'test/fixtures/scenarios'),
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--strip') o.strip = argv[++i];
    else if (a === '--scale') o.scale = Number(argv[++i]);
    else if (a === '--out-dir') o.outDir = path.resolve(argv[++i]);
    else if (a === '--table') o.table = true;
    else if (a === '--reheader') o.reheader = true;
    else if (a === '--detail') o.detail = true;
    else if (a === 'all') o.scenarios.push(...names);
    else if (names.includes(a)) o.scenarios.push(a);
    else throw new Error(`unknown argument ${a}; scenarios: all, ${names.join(', ')}`);
  }
  if (!['auto', 'always', 'never'].includes(o.strip)) throw new Error('--strip takes auto, always or never');
  if (!(o.scale > 0)) throw new Error('--scale takes a positive number');
  if (o.scenarios.length === 0 && !o.table) o.scenarios.push(...names);
  return o;
}

/** Starts the service under the CLI; resolves once it says it listens. */
function start(scenario, tmpOut, events, detail) {
  const args = [
    path.join(root, 'bin/fragstat.js'),
    'run',
    ...(detail ? ['--detail'] : []),
    '--interval',
    '1s',
  ];
  if (scenario.allocator !== 'glibc') args.push('--allocator', scenario.allocator);
  args.push('--out', tmpOut, '--', process.execPath, path.join(here, scenario.file));
  const cli = spawn(process.execPath, args, {
    cwd: root,
    env: { ...process.env, ...scenario.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise((resolve) => cli.on('close', (code, signal) => resolve({ code, signal })));
  // The CLI's stderr: its live summary (one line a sample) and the doctor at the end.
  const stderr = [];
  createInterface({ input: cli.stderr }).on('line', (l) => stderr.push(l));
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error('the service did not say it listens within 120 s')),
      120_000,
    );
    createInterface({ input: cli.stdout }).on('line', (line) => {
      // "event <what>" lines are the service's own milestones (a batch, the cache filling).
      if (line.startsWith('event ')) events.push({ at: Date.now(), what: line.slice(6) });
      const m = /listening on (http:\/\/[\d.]+:\d+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(
        new Error(`the CLI exited (${code ?? signal}) before the service listened:\n${stderr.join('\n')}`),
      );
    });
  });
  return { cli, exited, ready, stderr };
}

/** One load phase with autocannon; resolves with its counts. */
async function load(url, spec, seconds) {
  const result = await autocannon({
    url,
    connections: spec.connections,
    duration: seconds,
    overallRate: spec.overallRate,
    timeout: 30,
    requests: [{ method: 'GET', setupRequest: (req) => ({ ...req, path: spec.path() }) }],
  });
  return {
    requests: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
  };
}

function glibcVersion() {
  return process.report.getReport().header.glibcVersionRuntime ?? null;
}

function strip(obj) {
  if (typeof obj.timestamp !== 'number' && obj.final !== true) return obj; // trims and others: whole
  const out = {};
  for (const k of kept) if (k in obj) out[k] = obj[k];
  return out;
}

function loadScenario(name) {
  const file = `${name.replace(/-jemalloc$/, '')}.cjs`;
  const base = require(path.join(here, file)).scenario;
  const scenario = { file, allocator: 'glibc', env: {}, ...base };
  if (name.endsWith('-jemalloc')) Object.assign(scenario, base.jemalloc);
  delete scenario.jemalloc;
  return { scenario };
}

async function record(name, o) {
  const { scenario } = loadScenario(name);
  const tmpDir = mkdtempSync(path.join(os.tmpdir(), 'fragstat-scenario-'));
  const tmpOut = path.join(tmpDir, 'samples.ndjson');
  const events = [];
  const began = Date.now();
  console.error(`# ${name}: expected ${scenario.expected}, ${scenario.allocator}`);
  const { cli, exited, ready, stderr } = start(scenario, tmpOut, events, o.detail);
  const url = await ready;
  const phases = [];
  for (const p of scenario.phases) {
    const seconds = Math.max(1, Math.round(p.seconds * o.scale));
    const phase = { name: p.name, start: Date.now() };
    if (p.load) Object.assign(phase, await load(url, p.load, seconds));
    else await sleep(seconds * 1000);
    phase.end = Date.now();
    phases.push(phase);
    const counts = p.load
      ? `, ${phase.requests} requests, ${phase.non2xx} non-2xx, ${phase.errors} errors`
      : '';
    console.error(`  ${p.name}: ${((phase.end - phase.start) / 1000).toFixed(0)} s${counts}`);
  }
  cli.kill('SIGTERM');
  const { code, signal } = await exited;

  const lines = readFileSync(tmpOut, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
  rmSync(tmpDir, { recursive: true, force: true });
  const whole = lines.map((l) => JSON.stringify(l)).join('\n').length;
  const stripped = o.strip === 'always' || (o.strip === 'auto' && whole > STRIP_OVER);
  const header = {
    scenario: name,
    expected: scenario.expected,
    allocator: scenario.allocator,
    loadStartedAt: null,
    phases,
    node: process.version,
    glibc: glibcVersion(),
    notes: scenario.notes,
    service: `bench/scenarios/${scenario.file}`,
    detail: o.detail,
    command:
      `fragstat run${o.detail ? ' --detail' : ''} --interval 1s${scenario.allocator !== 'glibc' ? ` --allocator ${scenario.allocator}` : ''}` +
      ` -- node bench/scenarios/${scenario.file}`,
    env: scenario.env,
    events,
    scale: o.scale,
    stripped: stripped ? { fields: kept, wholeBytes: whole } : false,
    cliExit: code ?? signal,
  };
  const body = stripped ? lines.map(strip) : lines;
  const file = path.join(o.outDir, `${name}${o.detail ? '-detail' : ''}.ndjson`);
  const { ok, s } = write(file, name, scenario, header, body);
  const doctor = stderr.slice(stderr.findIndex((l) => l.startsWith('[fragstat] at the end')));
  console.error(`${doctor.join('\n')}`);
  printSummary(name, file, s, (Date.now() - began) / 1000);
  return { name, ok, s };
}

/** Completes the header (load start, notes from the checks) and writes the recording. */
function write(file, name, scenario, header, body) {
  header.loadStartedAt = header.phases.find((p) => 'requests' in p)?.start ?? header.phases[0]?.start ?? null;
  const s = summarize(body);
  const results = shapes[name](body.filter(isSample), header.phases, header.events);
  const notes = [scenario.notes, ...results.filter((c) => c.note).map((c) => c.note)];
  // A recording that misses its shape says so itself.
  for (const c of results) if (!c.pass) notes.push(`Shape check failed: ${c.what}.`);
  if (s.maxGapMs > 2000) {
    notes.push(
      `${s.samples} samples: the monitor stretched its 1 s interval up to ${(s.maxIntervalMs / 1000).toFixed(1)} s ` +
        `(its 0.2% overhead budget over the slowest recent reading, up to ${s.maxDurationMs.toFixed(0)} ms); ` +
        `the longest gap between samples is ${(s.maxGapMs / 1000).toFixed(1)} s.`,
    );
  }
  header.notes = notes.join(' ');
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${[header, ...body].map((l) => JSON.stringify(l)).join('\n')}\n`);
  let ok = true;
  for (const c of results) {
    console.error(`  ${c.pass ? 'ok  ' : 'FAIL'} ${c.what}`);
    ok &&= c.pass;
  }
  return { ok, s };
}

/** Rewrites the header of a recording already made (after a change to the notes or checks). */
function reheader(name, o, suffix) {
  const file = path.join(o.outDir, `${name}${suffix}.ndjson`);
  const lines = readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
  const [old, ...body] = lines;
  const { scenario } = loadScenario(name);
  console.error(`# ${name}${suffix}: header rewritten`);
  const { ok, s } = write(file, name, scenario, { ...old, notes: scenario.notes }, body);
  printSummary(name, file, s, 0);
  return { name, ok, s };
}

const isSample = (l) => typeof l.timestamp === 'number';
const mib = (b) => `${(b / MiB).toFixed(0)} MiB`;
const within = (samples, t0, t1) => samples.filter((x) => x.timestamp >= t0 && x.timestamp <= t1);
const median = (xs) => {
  const v = xs.filter((x) => typeof x === 'number').sort((a, b) => a - b);
  return v.length ? v[Math.floor(v.length / 2)] : NaN;
};
/** A figure's median over the first or last `n` samples of a window (one sample is noisy). */
const head = (xs, key, n = xs.length >= 15 ? 3 : 1) => median(xs.slice(0, n).map((x) => x[key]));
const tail = (xs, key, n = xs.length >= 15 ? 3 : 1) => median(xs.slice(-n).map((x) => x[key]));
const growth = (xs, key) => tail(xs, key) - head(xs, key);
const check = (what, pass, note) => ({ what, pass, note });

/** Growth of RSS and of each part over the load: the leaks' checks. */
function leak(samples, phases, part, other) {
  const xs = within(samples, phases[0].start, phases[phases.length - 1].end);
  const rss = growth(xs, 'rssBytes');
  const p = growth(xs, part);
  const q = growth(xs, other);
  return [
    check(`RSS grows ${mib(rss)} over the load (>= 100 MiB)`, rss >= 100 * MiB),
    check(`${part} grows ${mib(p)}, ${((p / rss) * 100).toFixed(0)}% of RSS growth (>= 60%)`, p >= 0.6 * rss),
    check(
      `${other} grows ${mib(q)}, ${((q / rss) * 100).toFixed(0)}% of RSS growth (<= 20%)`,
      q <= 0.2 * rss,
    ),
  ];
}

/**
 * After the bursts: RSS over the second half of the final idle (and the reading at exit) against
 * before the load, and how much of it is neither live malloc bytes nor V8's heap.
 */
function idleAfterBursts(samples, phases) {
  const before = samples.filter((x) => x.timestamp <= phases[0].end);
  const last = phases[phases.length - 1];
  const idle = samples.filter((x) => x.timestamp >= (last.start + last.end) / 2);
  const peak = Math.max(...samples.map((x) => x.rssBytes));
  // The reading at exit has no v8HeapBytes: the last one seen stands in.
  let v8 = 0;
  const held = samples.map((x) => {
    v8 = x.v8HeapBytes ?? v8;
    return x.timestamp >= (last.start + last.end) / 2
      ? (x.rssBytes - x.allocatedBytes - v8) / x.rssBytes
      : null;
  });
  const rss = median(idle.map((x) => x.rssBytes));
  const resident = idle.filter((x) => typeof x.residentFreeBytes === 'number');
  return {
    rss,
    peak,
    rise: rss - tail(before, 'rssBytes'),
    liveRise: median(idle.map((x) => x.allocatedBytes)) - tail(before, 'allocatedBytes'),
    heldShare: median(held),
    residentShare: resident.length ? median(resident.map((x) => x.residentFreeBytes / x.rssBytes)) : null,
    n: idle.length,
  };
}

// What each recording must show to be an honest example of its verdict.
const shapes = {
  'native-leak': (samples, phases) => leak(samples, phases, 'allocatedBytes', 'v8HeapBytes'),
  'js-leak': (samples, phases) => leak(samples, phases, 'v8HeapBytes', 'allocatedBytes'),
  'burst-idle': (samples, phases) => {
    const i = idleAfterBursts(samples, phases);
    return [
      check(
        `final idle RSS ${mib(i.rss)} stays ${mib(i.rise)} above before the load (>= 50 MiB)`,
        i.rise >= 50 * MiB,
      ),
      check(
        `live malloc bytes at idle ${mib(i.liveRise)} above before the load (<= 30 MiB)`,
        i.liveRise <= 30 * MiB,
      ),
      check(
        `${(i.heldShare * 100).toFixed(0)}% of idle RSS is neither live malloc bytes nor V8's heap (>= 40%); ` +
          `residentFreeBytes ${i.residentShare === null ? 'absent at idle' : `${(i.residentShare * 100).toFixed(0)}% of it`}` +
          ` (${i.n} readings)`,
        i.heldShare >= 0.4,
      ),
    ];
  },
  'burst-idle-jemalloc': (samples, phases) => {
    const i = idleAfterBursts(samples, phases);
    return [
      check(
        `final idle RSS ${mib(i.rss)}, ${mib(i.rise)} above before the load (<= 40 MiB)`,
        i.rise <= 40 * MiB,
      ),
      check(
        `final idle RSS is ${((i.rss / i.peak) * 100).toFixed(0)}% of the peak ${mib(i.peak)} (<= 60%)`,
        i.rss <= 0.6 * i.peak,
      ),
    ];
  },
  'cache-plateau': (samples, phases, events) => {
    const end = phases[phases.length - 1].end;
    const xs = within(samples, phases[0].start, end);
    // The reading at exit counts too: it comes a few seconds after the load ends.
    const last = samples.filter((x) => x.timestamp >= end - 120_000).map((x) => x.rssBytes);
    const range = Math.max(...last) - Math.min(...last);
    const full = events.find((e) => e.what.startsWith('cache-full'));
    const note = full
      ? `The cache filled ${((full.at - (phases.find((p) => 'requests' in p) ?? phases[0]).start) / 1000).toFixed(0)} s into the load.`
      : '';
    return [
      check(
        `RSS rises ${mib(growth(xs, 'rssBytes'))} over the load (>= 40 MiB)`,
        growth(xs, 'rssBytes') >= 40 * MiB,
      ),
      check(
        `RSS over the last 120 s spans ${(range / MiB).toFixed(1)} MiB (<= 8 MiB; ${last.length} readings)`,
        range <= 8 * MiB,
        note,
      ),
      check('the cache filled before the last 120 s', !!full && full.at <= end - 120_000),
    ];
  },
  sawtooth: (samples, phases, events) => {
    // The lowest RSS between one batch's end and the next one's start, cycle by cycle.
    const ends = events.filter((e) => e.what.startsWith('batch-end')).map((e) => e.at);
    const starts = events.filter((e) => e.what.startsWith('batch-start')).map((e) => e.at);
    const troughs = [];
    const swings = [];
    for (const t of ends) {
      const next = starts.find((s) => s > t);
      if (!next) break;
      const quiet = within(samples, t, next).map((x) => x.rssBytes);
      const busy = within(samples, starts.filter((s) => s < t).pop() ?? t, t).map((x) => x.rssBytes);
      if (quiet.length) troughs.push(Math.min(...quiet));
      if (quiet.length && busy.length) swings.push(Math.max(...busy) - Math.min(...quiet));
    }
    const rise = median(troughs.slice(-3)) - median(troughs.slice(0, 3));
    const later = troughs.slice(1);
    const step = later.length ? Math.min(...later) - troughs[0] : 0;
    const note =
      `Troughs between batches (lowest RSS from one batch's end to the next one's start), in order: ` +
      `${troughs.map((t) => (t / MiB).toFixed(0)).join(', ')} MiB.` +
      (step > 16 * MiB
        ? ` After the first batch RSS came back to ${mib(troughs[0])}; every later trough is ` +
          `${mib(step)} higher or more (${mib(Math.min(...later))}-${mib(Math.max(...later))}): glibc keeps ` +
          `freed memory resident from the second batch on.`
        : '') +
      (rise > 16 * MiB
        ? ` The troughs rose ${mib(rise)} from the first three cycles to the last three.`
        : '');
    return [
      check(`${troughs.length} cycles seen (>= 8)`, troughs.length >= 8),
      check(
        `median swing from a batch's peak to the next trough ${mib(median(swings))} (>= 50 MiB)`,
        median(swings) >= 50 * MiB,
      ),
      check(
        `troughs rise ${mib(rise)} from the first three cycles to the last three (reported, not judged)`,
        true,
        note,
      ),
    ];
  },
};

/** Start, peak and end of each figure (the final reading included); sample count and the longest gap. */
export function summarize(lines) {
  const samples = lines.filter(isSample);
  const fig = (key) => {
    const xs = samples.map((s) => s[key]).filter((v) => typeof v === 'number');
    return xs.length ? { start: xs[0], peak: Math.max(...xs), end: xs[xs.length - 1], n: xs.length } : null;
  };
  let maxGapMs = 0;
  for (let i = 1; i < samples.length; i++)
    maxGapMs = Math.max(maxGapMs, samples[i].timestamp - samples[i - 1].timestamp);
  const finals = lines.filter((l) => l.final === true);
  return {
    // The final reading (taken at exit, with a timestamp) is counted apart.
    samples: samples.length - finals.length,
    finals: finals.length,
    finalHasV8: finals.some((f) => typeof f.v8HeapBytes === 'number'),
    spanS: samples.length ? (samples[samples.length - 1].timestamp - samples[0].timestamp) / 1000 : 0,
    maxGapMs,
    maxIntervalMs: Math.max(0, ...samples.map((s) => s.intervalMs ?? 0)),
    maxDurationMs: Math.max(0, ...samples.map((s) => s.durationMs ?? 0)),
    rss: fig('rssBytes'),
    allocated: fig('allocatedBytes'),
    v8: fig('v8HeapBytes'),
    residentFree: fig('residentFreeBytes'),
  };
}

function printSummary(name, file, s, seconds) {
  const f = (x) =>
    x ? `${(x.start / MiB).toFixed(0)} / ${(x.peak / MiB).toFixed(0)} / ${(x.end / MiB).toFixed(0)}` : 'n/a';
  console.error(
    `${name} -> ${path.relative(root, file)} in ${seconds.toFixed(0)} s\n` +
      `  MiB start / peak / end: rss ${f(s.rss)}, allocated ${f(s.allocated)}, v8 heap ${f(s.v8)}, resident free ${f(s.residentFree)}\n` +
      `  ${s.samples} samples over ${s.spanS.toFixed(0)} s (+${s.finals} final, v8HeapBytes in final: ${s.finalHasV8}),` +
      ` max gap ${(s.maxGapMs / 1000).toFixed(1)} s, max intervalMs ${s.maxIntervalMs}, slowest read ${s.maxDurationMs.toFixed(1)} ms`,
  );
}

/** The README's table: one row a recording. */
function summaryTable(dir) {
  const rows = [];
  for (const file of names.flatMap((n) => [n, `${n}-detail`])) {
    let text;
    try {
      text = readFileSync(path.join(dir, `${file}.ndjson`), 'utf8');
    } catch {
      continue;
    }
    const lines = text
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l));
    const h = lines[0];
    const s = summarize(lines);
    const f = (x) =>
      x
        ? `${(x.start / MiB).toFixed(0)} / ${(x.peak / MiB).toFixed(0)} / ${(x.end / MiB).toFixed(0)}`
        : 'n/a';
    const kb = Math.round(Buffer.byteLength(text) / 1024);
    rows.push([
      file,
      h.expected,
      f(s.rss),
      f(s.allocated),
      f(s.v8),
      f(s.residentFree),
      `${s.samples} + ${s.finals}`,
      s.spanS.toFixed(0),
      (s.maxGapMs / 1000).toFixed(1),
      `${kb}${h.stripped ? ' (stripped)' : ''}`,
    ]);
  }
  const header = [
    'scenario',
    'expected',
    'RSS MiB',
    'allocated MiB',
    'V8 heap MiB',
    'resident free MiB',
    'samples + final',
    'span s',
    'max gap s',
    'KB',
  ];
  const cells = [header, ...rows];
  const w = header.map((_, i) => Math.max(...cells.map((r) => String(r[i]).length)));
  const line = (r) => `| ${r.map((c, i) => String(c).padEnd(w[i])).join(' | ')} |`;
  return [line(header), `| ${w.map((n) => '-'.repeat(n)).join(' | ')} |`, ...rows.map(line)].join('\n');
}

const o = parseArgs(process.argv.slice(2));
if (o.table) {
  console.log(
    'Figures are start / peak / end, the end being the last reading that has the figure (the reading ' +
      'at exit has no v8HeapBytes, and under glibc no residentFreeBytes).\n',
  );
  console.log(summaryTable(o.outDir));
  process.exit(0);
}
const results = [];
for (const name of o.scenarios)
  results.push(o.reheader ? reheader(name, o, o.detail ? '-detail' : '') : await record(name, o));
if (results.some((r) => !r.ok)) {
  console.error(
    `shape checks failed: ${results
      .filter((r) => !r.ok)
      .map((r) => r.name)
      .join(', ')}`,
  );
  process.exitCode = 1;
}
