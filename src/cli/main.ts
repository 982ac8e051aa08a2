// The fragstat command line: `fragstat run` starts an application under a chosen allocator with
// fragstat sampling inside it; `fragstat plot` draws the samples.
import { spawn, type ChildProcess } from 'node:child_process';
import {
  closeSync,
  constants as fs,
  createWriteStream,
  fstatSync,
  ftruncateSync,
  openSync,
  readFileSync,
  statSync,
  writeSync,
  type WriteStream,
} from 'node:fs';
import { constants } from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { createInterface } from 'node:readline';
import { findLibrary, libraries, type Preloadable } from '../read/libraries';
import { commandOf, parentOf, watchAncestry } from './hook-signals';
import { renderSvg, type Marker, type Series } from './plot';
import {
  doctorCommand,
  doctorText,
  doctorUsage,
  ReportCollector,
  ReportError,
  reportCommand,
  reportUsage,
  runReport,
  verdictOf,
} from './report';
import type { ReportVerdict } from '../report/report';
import { profileCommand, ProfileUsageError, startProfile, type ProfileSession } from './profile';
import { attachCommand, attachUsage } from './attach';

export const usage = `Usage:
  fragstat run [options] -- <command> [args...]
      Runs <command> (a node application) with fragstat sampling inside it, no code changes.
      --allocator <name>   glibc (default), jemalloc, tcmalloc or mimalloc (preloaded)
      --interval <time>    time between samples: 500ms, 1s (default), 2m
      --out <file>         write every sample as one JSON line (NDJSON)
      --detail             detail samples (glibc arenas, largest free chunk)
      --quiet              no live summary, and no doctor at the end
      --auto-trim          trim by fragstat's default policy inside the application
                           (monitor({ autoTrim: true }): trims when it goes quiet after a burst,
                           caps glibc's arenas); each trim is recorded and marked in the plot
      --report <file>      write an HTML report when the command ends (and on SIGUSR2 to fragstat)
      --capture-dir <dir>  write one diagnostic bundle into <dir> as the application nears its
                           cgroup's memory limit or V8's heap limit (docs/CAPTURE.md)
      --profile <file>     jemalloc heap profile (pprof) of the application, written on SIGUSR2
                           and when it exits (implies --allocator jemalloc)
      --profile-inactive   with --profile: start sampling at the first SIGUSR2, not at start
      --profile-js         with --profile: name the JavaScript functions that allocated
                           (experimental; runs node with --perf-basic-prof)
  fragstat profile <file> [--top N] [--cumulative]
      Prints the functions holding the most memory in a heap profile written by run --profile,
      by the bytes they allocated themselves, or with --cumulative, with their callees'.
  fragstat plot <samples.ndjson>... -o <chart.svg> [--metric rss|allocated|free|heap]
      Draws RSS, allocated and free memory over time; with several files, one line per file
      (RSS unless --metric says otherwise).
${reportUsage}
${doctorUsage}
${attachUsage}
  fragstat --help`;

export class UsageError extends Error {}
/** A failure that is not about the command line's shape: reported without the usage text. */
export class CliError extends Error {}

const MiB = 1024 * 1024;
// How often the live output recomputes the verdict (it walks every sample so far).
const VERDICT_EVERY_MS = 10_000;

/** "500ms", "1s", "2m", "1500" (ms) to milliseconds. */
export function parseDuration(text: string, what = 'interval'): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m)
    throw new UsageError(`invalid time ${JSON.stringify(text)} for ${what}: use e.g. 500ms, 1s, 2m, 1h`);
  const unitMs: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const n = Number(m[1]) * unitMs[m[2] ?? 'ms'];
  if (n < 10) throw new UsageError(`${what} ${JSON.stringify(text)} is below 10ms`);
  // The monitor's own bounds (a timer cannot wait longer than 2^31-1 ms, about 24.8 days).
  if (n > 2 ** 31 - 1) throw new UsageError(`${what} ${JSON.stringify(text)} is above 24 days`);
  return n;
}

/**
 * Opens `file` for writing without following a symbolic link at it, creating it 0644 (less the
 * umask), and empties it only once it is known to be a regular file of this user and none of
 * `keep` (the application's script, the plot's input): a path that is a link, someone else's
 * file, a device or one of those files is refused before a byte of it changes.
 */
export function openOutput(file: string, keep: { path: string; what: string }[]): number {
  let fd: number;
  try {
    fd = openSync(file, fs.O_WRONLY | fs.O_CREAT | fs.O_NOFOLLOW | fs.O_NONBLOCK, 0o644);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ELOOP') throw new CliError(`refusing to write ${file}: it is a symbolic link`);
    if (e.code === 'ENOENT') {
      throw new CliError(`cannot write ${file}: ENOENT, its directory ${path.dirname(file)} does not exist`);
    }
    throw new CliError(`cannot write ${file}: ${e.message}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new CliError(`refusing to write ${file}: it is not a regular file`);
    if (typeof process.getuid === 'function' && st.uid !== process.getuid()) {
      throw new CliError(`refusing to write ${file}: it belongs to another user`);
    }
    for (const k of keep) {
      let other;
      try {
        other = statSync(k.path);
      } catch {
        continue;
      }
      if (other.dev === st.dev && other.ino === st.ino) {
        throw new CliError(`refusing to write ${file}: it is ${k.what}`);
      }
    }
    ftruncateSync(fd, 0);
    return fd;
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

interface RunOptions {
  allocator: 'glibc' | Preloadable;
  intervalMs: number;
  out: string | null;
  detail: boolean;
  quiet: boolean;
  autoTrim: boolean;
  report: string | null;
  captureDir: string | null;
  profile: string | null;
  profileInactive: boolean;
  profileJs: boolean;
  command: string[];
}

export function parseRun(args: string[]): RunOptions {
  const o: RunOptions = {
    allocator: 'glibc',
    intervalMs: 1000,
    out: null,
    detail: false,
    quiet: false,
    autoTrim: false,
    report: null,
    captureDir: null,
    profile: null,
    profileInactive: false,
    profileJs: false,
    command: [],
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = () => {
      const v = args[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    if (a === '--') {
      o.command = args.slice(i + 1);
      break;
    } else if (a === '--allocator') {
      const v = value();
      if (!['glibc', 'jemalloc', 'tcmalloc', 'mimalloc'].includes(v)) {
        throw new UsageError(
          `unknown allocator ${JSON.stringify(v)}: use glibc, jemalloc, tcmalloc or mimalloc`,
        );
      }
      o.allocator = v as RunOptions['allocator'];
    } else if (a === '--interval') o.intervalMs = parseDuration(value());
    else if (a === '--out') o.out = value();
    else if (a === '--detail') o.detail = true;
    else if (a === '--quiet') o.quiet = true;
    else if (a === '--auto-trim') o.autoTrim = true;
    else if (a === '--report') o.report = value();
    else if (a === '--capture-dir') o.captureDir = value();
    else if (a === '--profile') o.profile = value();
    else if (a === '--profile-inactive') o.profileInactive = true;
    else if (a === '--profile-js') o.profileJs = true;
    else throw new UsageError(`unknown option ${JSON.stringify(a)} for run`);
  }
  if (o.command.length === 0)
    throw new UsageError('run needs a command after --, e.g. fragstat run -- node app.js');
  if (o.profileInactive && !o.profile) throw new UsageError('--profile-inactive needs --profile <file>');
  if (o.profileJs && !o.profile) throw new UsageError('--profile-js needs --profile <file>');
  if (o.profile) {
    if (o.allocator === 'tcmalloc' || o.allocator === 'mimalloc') {
      throw new UsageError(`--profile uses jemalloc's heap profiler: it cannot run under ${o.allocator}`);
    }
    o.allocator = 'jemalloc';
  }
  return o;
}

const mib = (b: unknown) => (typeof b === 'number' ? `${(b / MiB).toFixed(1)} MiB` : 'n/a');

/**
 * One line describing a sample: RSS, V8's heap, live malloc bytes, free memory (in RAM where the
 * sample says), and the interval when sampling had to stretch it.
 */
export function summaryLine(s: Record<string, unknown>): string {
  const ratios = s.ratios as { fragmentation: number | null } | undefined;
  const frag = ratios?.fragmentation;
  const resident = typeof s.residentFreeBytes === 'number';
  const free = resident
    ? `free in RAM ${mib(s.residentFreeBytes)}`
    : `free ${mib(s.freeBytes)}` + (typeof frag === 'number' ? ` (${(frag * 100).toFixed(0)}% of heap)` : '');
  const stretched =
    s.intervalReason === 'overhead' && typeof s.intervalMs === 'number'
      ? ` [every ${(s.intervalMs / 1000).toFixed(1)} s: reads took ${typeof s.durationMs === 'number' ? s.durationMs.toFixed(1) : '?'} ms, stretched to keep sampling within its overhead budget]`
      : '';
  return (
    `[fragstat] ${String(s.allocator)} rss ${mib(s.rssBytes)} v8 ${mib(s.v8HeapBytes)} ` +
    `allocated ${mib(s.allocatedBytes)} ${free}${stretched}`
  );
}

/** The verdict as one line for the terminal. */
export function verdictLine(v: ReportVerdict, windowMs: number): string {
  return (
    `[fragstat] verdict after ${(windowMs / 60_000).toFixed(1)} min: ${v.kind}` +
    (v.confidence ? ` (${v.confidence} confidence)` : '') +
    `: ${v.title}`
  );
}

/** MALLOC_CONF with jemalloc's background thread on, unless it already sets background_thread. */
export function withBackgroundThread(conf: string | undefined): string {
  const pairs = (conf ?? '').split(',').filter((p) => p !== '');
  return pairs.some((p) => p.startsWith('background_thread:'))
    ? pairs.join(',')
    : [...pairs, 'background_thread:true'].join(',');
}

/** How long a SIGINT sent to fragstat alone waits for the application to have it too. */
export const SIGINT_GRACE_MS = 2000;

/**
 * The ancestors that stand for whoever started fragstat: its parent, and above a `sh -c` that
 * only runs fragstat (as npm exec and npm run start a bin), that shell's parent too, since such a
 * shell outlives the launcher while it waits for fragstat.
 */
export function launcherChain(): number[] {
  const chain = [process.ppid];
  const shells = /^(sh|dash|bash|zsh|ksh|mksh|ash|busybox)$/;
  for (let pid = process.ppid; chain.length < 4 && pid > 1;) {
    const argv = commandOf(pid);
    if (!argv || !shells.test(path.basename(argv[0] ?? '')) || argv[1] !== '-c') break;
    const parent = parentOf(pid);
    if (parent === null || parent < 1) break;
    chain.push(parent);
    pid = parent;
  }
  return chain;
}

/**
 * Passes the signals that end a process on to the application, and ends it when whoever started
 * fragstat is gone. SIGTERM and SIGHUP, sent to fragstat alone, are passed on as they come.
 *
 * SIGINT is the hard one: Ctrl-C in a terminal sends it to the whole foreground process group,
 * the application included, so passing it on would deliver it twice (and a second SIGINT means
 * "stop now" to many servers); but `kill -INT <fragstat pid>` reaches fragstat alone, and the
 * application must end then too. fragstat cannot tell the two apart from the signal itself, so
 * the application's hook reports each SIGINT it receives over the pipe, and fragstat passes its
 * own on only when the application has not reported one within SIGINT_GRACE_MS (nor ended). A
 * process group of its own for the application would settle it without waiting, but it would
 * also take the terminal from an interactive application (reading stdin from a background group
 * stops it) and keep a signal sent to fragstat's group from reaching it: not worth the cost. The
 * price here is a SIGINT delivered twice when the application's event loop is blocked for longer
 * than the grace at Ctrl-C, or when the command is not node (no hook) and takes longer than that
 * to end.
 */
function passSignals(
  child: ChildProcess,
  o: { quiet: boolean; profile: boolean },
): { appReceived(signal: string): void; stop(): void } {
  const debug = process.env.FRAGSTAT_DEBUG === '1';
  const say = (msg: string) => process.stderr.write(`[fragstat] ${msg}\n`);
  const running = () => child.exitCode === null && child.signalCode === null;
  const pass = (signal: NodeJS.Signals) => {
    if (running()) child.kill(signal);
  };
  // SIGINTs the application reported that no SIGINT of fragstat's has been matched with (times),
  // and fragstat's own still waiting for one (their timers).
  let reported: number[] = [];
  const waiting: NodeJS.Timeout[] = [];
  const onInt = () => {
    const now = Date.now();
    reported = reported.filter((t) => now - t <= SIGINT_GRACE_MS);
    if (reported.length) {
      reported.shift();
      if (debug) say('SIGINT: the application has it already, not passed on');
      return;
    }
    const timer = setTimeout(() => {
      waiting.splice(waiting.indexOf(timer), 1);
      if (!running()) return;
      if (!o.quiet || debug) say('SIGINT was sent to fragstat alone: passing it on to the application');
      pass('SIGINT');
    }, SIGINT_GRACE_MS);
    waiting.push(timer);
  };
  const onTerm = () => pass('SIGTERM');
  const onHup = () => pass('SIGHUP');
  const onUsr2 = () => pass('SIGUSR2');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  process.on('SIGHUP', onHup);
  if (o.profile) process.on('SIGUSR2', onUsr2);
  // Whoever started fragstat may go away without passing anything on (npm exec on SIGTERM, a
  // closed terminal's shell killed by SIGKILL): then fragstat ends the application as SIGTERM
  // would, so that neither is left running unwatched.
  const chain = launcherChain();
  const stopWatch = watchAncestry(chain, 1000, () => {
    say(`the process that started fragstat (pid ${chain[chain.length - 1]}) is gone: ending the application`);
    pass('SIGTERM');
  });
  // A write to a terminal or pipe that closed with the launcher must not end fragstat before the
  // application and its final writes.
  const ignore = () => {};
  process.stderr.on('error', ignore);
  process.stdout.on('error', ignore);
  return {
    appReceived(signal) {
      if (signal !== 'SIGINT') return;
      const timer = waiting.shift();
      if (timer) {
        clearTimeout(timer);
        if (debug) say('SIGINT: the application has it already, not passed on');
      } else reported.push(Date.now());
    },
    stop() {
      for (const t of waiting.splice(0)) clearTimeout(t);
      stopWatch();
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      process.off('SIGHUP', onHup);
      process.off('SIGUSR2', onUsr2);
    },
  };
}

async function run(o: RunOptions): Promise<number> {
  const env: Record<string, string | undefined> = { ...process.env };
  if (o.allocator !== 'glibc') {
    const lib = findLibrary(o.allocator);
    if (!lib) {
      process.stderr.write(
        `fragstat: ${o.allocator} is not installed (looked for ${libraries[o.allocator].files.join(', ')}).\n` +
          `Install it (${libraries[o.allocator].install}), or set FRAGSTAT_LIB_PATH to the directory that holds it.\n`,
      );
      return 2;
    }
    env.LD_PRELOAD = env.LD_PRELOAD ? `${lib}:${env.LD_PRELOAD}` : lib;
    // jemalloc returns freed pages while idle only with its background thread (docs/STAIRSTEP.md:
    // 62 MiB idle with it, 111-152 without): on, unless MALLOC_CONF already says either way.
    if (o.allocator === 'jemalloc') env.MALLOC_CONF = withBackgroundThread(env.MALLOC_CONF);
  }
  const hook = path.join(__dirname, 'hook.js');
  env.NODE_OPTIONS = `${env.NODE_OPTIONS ? `${env.NODE_OPTIONS} ` : ''}--require ${JSON.stringify(hook)}`;
  env.FRAGSTAT_RUN_FD = '3';
  env.FRAGSTAT_RUN_INTERVAL_MS = String(o.intervalMs);
  env.FRAGSTAT_RUN_DETAIL = o.detail ? '1' : '0';
  env.FRAGSTAT_RUN_AUTOTRIM = o.autoTrim ? '1' : '0';
  if (o.captureDir) env.FRAGSTAT_RUN_CAPTURE_DIR = path.resolve(o.captureDir);
  const report = o.report ? runReport(o.report, o.command, env) : null;
  let profile: ProfileSession | null = null;
  if (o.profile) {
    try {
      profile = startProfile(o.profile, { inactive: o.profileInactive, js: o.profileJs }, env, o.command);
    } catch (err) {
      throw new CliError(`cannot write ${o.profile}: ${(err as Error).message}`);
    }
  }

  // Open the output before starting anything, so a bad path fails here and not mid-run.
  let out: WriteStream | null = null;
  if (o.out) {
    // Every argument of the command that names a file (the script, its config) is kept.
    const fd = openOutput(
      o.out,
      o.command.map((a) => ({ path: a, what: `${a}, a file of the command (${o.command.join(' ')})` })),
    );
    out = createWriteStream('', { fd });
    out.on('error', (err) => {
      process.stderr.write(`fragstat: writing ${o.out} failed: ${err.message}\n`);
      out = null;
    });
  }
  // The application's hook watches this process and ends the application when it is gone.
  env.FRAGSTAT_RUN_CLI_PID = String(process.pid);
  const child = spawn(o.command[0], o.command.slice(1), {
    env,
    stdio: ['inherit', 'inherit', 'inherit', 'pipe'],
  });
  const signals = passSignals(child, { quiet: o.quiet, profile: profile !== null });
  if (profile && child.pid) profile.attach(child.pid);

  const tty = process.stderr.isTTY;
  let samples = 0;
  let verdictAt = -Infinity;
  let shownVerdict = '';
  // What the doctor reads at the end.
  const seen = new ReportCollector();
  const lines = createInterface({ input: child.stdio[3] as Readable });
  lines.on('line', (line) => {
    if (!line.trim()) return;
    let s: Record<string, unknown> | null = null;
    try {
      s = JSON.parse(line) as Record<string, unknown>;
    } catch {
      // a torn line at exit: keep it in the file, skip the summary
    }
    // The hook saying that a signal reached the application: for passSignals, not a record.
    if (s && typeof s.signal === 'string' && s.timestamp === undefined) {
      signals.appReceived(s.signal);
      return;
    }
    out?.write(`${line}\n`);
    report?.line(line);
    if (!o.quiet) seen.line(line);
    if (!s) return;
    // A failure is said even under --quiet: it means there will be no samples.
    if (s.error) {
      process.stderr.write(`[fragstat] sampling failed in the application: ${String(s.error)}\n`);
      return;
    }
    // Said even under --quiet: where the bundle is.
    if (s.capture && typeof s.capture === 'object') {
      const c = s.capture as { dir?: unknown; reason?: unknown };
      process.stderr.write(
        `${tty ? '\r\x1b[K' : ''}[fragstat] capture (${String(c.reason)}): ${String(c.dir)}\n`,
      );
      return;
    }
    // The report's extra lines (env, breakdown, findings, trim) are not samples.
    if (typeof s.timestamp !== 'number') return;
    samples++;
    if (o.quiet) return;
    process.stderr.write(tty ? `\r\x1b[K${summaryLine(s)}` : `${summaryLine(s)}\n`);
    // The verdict so far, every 10 s of samples, printed when its kind or confidence changes.
    const now = s.timestamp;
    if (now - verdictAt < VERDICT_EVERY_MS) return;
    verdictAt = now;
    const v = verdictOf(seen);
    if (!('kind' in v)) return;
    const key = `${v.kind}/${v.confidence ?? ''}`;
    if (key === shownVerdict) return;
    shownVerdict = key;
    const window = seen.samples.length ? now - seen.samples[0].timestamp : 0;
    process.stderr.write(`${tty ? '\r\x1b[K' : ''}${verdictLine(v, window)}\n`);
  });

  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
    child.on('error', (err) => {
      process.stderr.write(`fragstat: cannot start ${o.command[0]}: ${err.message}\n`);
      resolve([127, null]);
    });
    child.on('close', (c, s) => resolve([c, s]));
  });
  signals.stop();
  await profile?.finish();
  if (tty && !o.quiet && samples) process.stderr.write('\n');
  const stream = out as WriteStream | null;
  if (stream) await new Promise((r) => stream.end(r));
  report?.finish(code, signal);
  if (!o.quiet && seen.samples.length > 0) {
    process.stderr.write(`[fragstat] at the end:\n${doctorText(seen).trimEnd().replace(/^/gm, '  ')}\n`);
  }
  if (samples === 0) {
    process.stderr.write('[fragstat] no samples: was the command a node process that ran long enough?\n');
  }
  if (signal) return 128 + (constants.signals[signal] ?? 0);
  return code ?? 1;
}

const metrics = ['rss', 'allocated', 'free', 'heap'] as const;
type Metric = (typeof metrics)[number];
const field: Record<Metric, string> = {
  rss: 'rssBytes',
  allocated: 'allocatedBytes',
  free: 'freeBytes',
  heap: 'heapBytes',
};

function plot(args: string[]): number {
  const files: string[] = [];
  let outFile: string | null = null;
  let metric: Metric | null = null;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '-o' || a === '--out') {
      outFile = args[++i] ?? null;
      if (!outFile) throw new UsageError(`${a} needs a file name`);
    } else if (a === '--metric') {
      const v = args[++i];
      if (!metrics.includes(v as Metric)) throw new UsageError(`--metric takes one of ${metrics.join(', ')}`);
      metric = v as Metric;
    } else if (a.startsWith('-')) throw new UsageError(`unknown option ${JSON.stringify(a)} for plot`);
    else files.push(a);
  }
  if (files.length === 0) throw new UsageError('plot needs at least one samples file');
  if (!outFile) throw new UsageError('plot needs -o <chart.svg>');

  const series: Series[] = [];
  const markers: Marker[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new CliError(`cannot read ${file}: ${(err as Error).message}`);
    }
    const lines = text
      .split('\n')
      .filter((l) => l.trim())
      .map((l, n) => {
        try {
          return JSON.parse(l) as Record<string, unknown>;
        } catch {
          throw new CliError(`${file}:${n + 1} is not a JSON line`);
        }
      });
    const rows = lines.filter((r) => typeof r.timestamp === 'number');
    if (rows.length === 0) throw new CliError(`${file} has no samples`);
    const t0 = rows[0].timestamp as number;
    // Trims recorded by run --auto-trim or --report: a dashed line each.
    for (const r of lines) {
      const t = r.trim as { timestamp?: unknown; releasedBytes?: unknown } | undefined;
      if (!t || typeof t !== 'object' || typeof t.timestamp !== 'number') continue;
      const released =
        typeof t.releasedBytes === 'number' ? `${(t.releasedBytes / MiB).toFixed(1)} MiB` : 'n/a';
      markers.push({
        x: (t.timestamp - t0) / 1000,
        label: `${files.length > 1 ? `${path.basename(file)}: ` : ''}trim released ${released}`,
      });
    }
    const label = files.length > 1 ? `${path.basename(file, '.ndjson')} (${String(rows[0].allocator)})` : '';
    const wanted: Metric[] = metric ? [metric] : files.length > 1 ? ['rss'] : ['rss', 'allocated', 'free'];
    for (const m of wanted) {
      const points = rows
        .filter((r) => Number.isFinite(r[field[m]]))
        .map((r) => ({ x: ((r.timestamp as number) - t0) / 1000, y: (r[field[m]] as number) / MiB }));
      if (points.length)
        series.push({ label: label ? (wanted.length > 1 ? `${label} ${m}` : label) : m, points });
    }
  }
  const title =
    files.length > 1
      ? `${metric ?? 'rss'} over time`
      : `${path.basename(files[0])}: rss, allocated and free over time`;
  const fd = openOutput(
    outFile,
    files.map((f) => ({ path: f, what: `the plot's input ${f}` })),
  );
  try {
    writeSync(fd, renderSvg(series, { title, xLabel: 'seconds', yLabel: 'MiB', markers }));
  } catch (err) {
    throw new CliError(`writing ${outFile} failed: ${(err as Error).message}`);
  } finally {
    closeSync(fd);
  }
  process.stderr.write(
    `[fragstat] wrote ${outFile} (${series.length} line${series.length === 1 ? '' : 's'})\n`,
  );
  return 0;
}

function profileTable(args: string[]): number {
  try {
    return profileCommand(args);
  } catch (err) {
    if (err instanceof ProfileUsageError) throw new UsageError(err.message);
    throw new CliError((err as Error).message);
  }
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === 'run') return await run(parseRun(rest));
    if (command === 'plot') return plot(rest);
    if (command === 'report') return reportCommand(rest);
    if (command === 'profile') return profileTable(rest);
    if (command === 'doctor') return doctorCommand(rest);
    if (command === 'attach') return await attachCommand(rest, parseDuration);
    if (command === '--help' || command === '-h' || command === 'help') {
      process.stdout.write(`${usage}\n`);
      return 0;
    }
    throw new UsageError(command ? `unknown command ${JSON.stringify(command)}` : 'no command given');
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`fragstat: ${err.message}\n\n${usage}\n`);
      return 2;
    }
    if (err instanceof CliError || err instanceof ReportError) {
      process.stderr.write(`fragstat: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}
