// `fragstat run --profile FILE`: the jemalloc heap profiler set up for the child, and its dumps
// turned into a pprof file; `fragstat profile FILE`: a saved profile as a top table.
import { watch, type FSWatcher, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { decodePprof, formatTop, readPprof, topTable } from '../profile/profile-pprof';

export class ProfileUsageError extends Error {}

/** MALLOC_CONF for a profiled child: the user's pairs, with profiling on (active or not). */
export function profilingConf(existing: string | undefined, active: boolean): string {
  const pairs = (existing ?? '').split(',').filter((p) => p !== '');
  const keep = pairs.filter((p) => !/^prof(_active)?:/.test(p));
  if (!keep.some((p) => p.startsWith('lg_prof_sample:'))) keep.push('lg_prof_sample:19');
  return ['prof:true', `prof_active:${active}`, ...keep].join(',');
}

// V8 writes /tmp/perf-<pid>.map, which names JIT code; interpreted functions get their own copies
// of the interpreter trampoline so they can be named too.
const jsFlags = ['--perf-basic-prof', '--interpreted-frames-native-stack'];

/** Whether the command starts node itself (so V8 flags can go on its command line). */
function isNode(cmd: string): boolean {
  return cmd === process.execPath || /^node(js)?(\d+)?$/.test(path.basename(cmd));
}

/**
 * Prepares `env` (and `command`, for --profile-js) for a child profiled into `file`; returns the
 * session that turns its dumps into the pprof file while it runs and when it has exited.
 */
export function startProfile(
  file: string,
  o: { inactive: boolean; js: boolean },
  env: Record<string, string | undefined>,
  command: string[],
): ProfileSession {
  const dir = mkdtempSync(path.join(process.env.TMPDIR || tmpdir(), 'fragstat-run-')); // mode 0700
  const dumpFile = path.join(dir, 'heap_v2');
  env.MALLOC_CONF = profilingConf(env.MALLOC_CONF, !o.inactive);
  env.FRAGSTAT_PROFILE_DUMP = dumpFile;
  const hook = path.join(__dirname, 'profile-hook.js');
  const options = [`--require ${JSON.stringify(hook)}`];
  if (o.js) env.FRAGSTAT_PROFILE_JS = '1';
  if (o.js && !isNode(command[0])) {
    options.push(...jsFlags);
    process.stderr.write(
      `[fragstat] ${command[0]} is not node: V8's flags go through NODE_OPTIONS, where --logfile is not ` +
        'allowed, so V8 also writes an isolate-*-v8.log file in the working directory\n',
    );
  } else if (o.js) {
    // V8's log file, which --perf-basic-prof opens, as a temporary file rather than one in the cwd.
    command.splice(1, 0, ...jsFlags, '--no-logfile-per-isolate', '--logfile=+');
  }
  env.NODE_OPTIONS = [env.NODE_OPTIONS, ...options].filter(Boolean).join(' ');
  return new ProfileSession(path.resolve(file), dir, dumpFile);
}

export class ProfileSession {
  private watcher: FSWatcher | null = null;
  private converted = 0; // mtimeMs of the last dump converted
  private pending: Promise<void> = Promise.resolve();
  private lastTop = '';
  private perfMap: string | null = null;

  constructor(
    readonly file: string,
    private readonly dir: string,
    private readonly dumpFile: string,
  ) {
    // Writing the file up front makes a bad path fail before the application starts.
    writeFileSync(file, '');
    this.watcher = watch(dir, (_event, name) => {
      if (name === path.basename(dumpFile)) this.queue();
    });
  }

  /** The profiled process: its perf map names JIT frames (with --profile-js). */
  attach(pid: number): void {
    this.perfMap = `/tmp/perf-${pid}.map`;
  }

  private queue(): void {
    this.pending = this.pending.then(() => this.convert());
  }

  private async convert(): Promise<void> {
    let mtime: number;
    try {
      mtime = statSync(this.dumpFile).mtimeMs;
    } catch {
      return; // not written yet
    }
    if (mtime === this.converted) return;
    this.converted = mtime;
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { heapProfileFromDump } = require('../profile/profile') as typeof import('../profile/profile');
      const p = await heapProfileFromDump(readFileSync(this.dumpFile, 'utf8'), {
        top: 10,
        perfMap: this.perfMap ?? undefined,
      });
      writeFileSync(this.file, p.pprof);
      this.lastTop = formatTop(p.top, p.sampledBytes);
      process.stderr.write(
        `[fragstat] wrote ${this.file}: ${(p.sampledBytes / 1024 / 1024).toFixed(1)} MiB live in sampled stacks\n`,
      );
    } catch (err) {
      process.stderr.write(`[fragstat] could not write ${this.file}: ${(err as Error).message}\n`);
    }
  }

  /** After the child exited: converts its last dump, prints the top table, removes the temporary files. */
  async finish(): Promise<void> {
    this.watcher?.close();
    this.watcher = null;
    this.queue();
    await this.pending;
    rmSync(this.dir, { recursive: true, force: true });
    if (this.lastTop) {
      process.stderr.write(
        `${this.lastTop}\n[fragstat] open it with: go tool pprof -top ${this.file} (or pprof -http=: ${this.file})\n`,
      );
    } else {
      process.stderr.write(`[fragstat] no heap profile was written to ${this.file}\n`);
    }
  }
}

/** `fragstat profile FILE [--top N] [--cumulative]`: the top table of a saved heap profile. */
export function profileCommand(args: string[]): number {
  let file: string | null = null;
  let top = 25;
  let by: 'self' | 'cumulative' = 'self';
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--top') {
      const v = Number(args[++i]);
      if (!Number.isInteger(v) || v < 1) throw new ProfileUsageError('--top takes a positive integer');
      top = v;
    } else if (a === '--cumulative') by = 'cumulative';
    else if (a.startsWith('-'))
      throw new ProfileUsageError(`unknown option ${JSON.stringify(a)} for profile`);
    else if (file === null) file = a;
    else throw new ProfileUsageError('profile takes one file');
  }
  if (file === null) throw new ProfileUsageError('profile needs a file written by fragstat run --profile');
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch (err) {
    throw new Error(`cannot read ${file}: ${(err as Error).message}`);
  }
  let stacks;
  try {
    stacks = readPprof(decodePprof(data)).stacks;
  } catch (err) {
    throw new Error(`${file} is not a heap profile: ${(err as Error).message}`);
  }
  const total = stacks.reduce((t, s) => t + s.bytes, 0);
  process.stdout.write(
    `${file}: ${(total / 1024 / 1024).toFixed(1)} MiB live in sampled stacks\n${formatTop(topTable(stacks, top, by), total)}\n`,
  );
  return 0;
}
