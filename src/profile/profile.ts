// heapProfile(): who holds the native memory, from jemalloc's sampling heap profiler. The dump
// runs on a libuv pool thread; parsing and symbolization run here, in rooms with no N-API
// (profile-heap: the dump's text; profile-symbols: maps and ELF; profile-pprof: the output).
import { readFileSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { binding, bindingPath } from '../binding';
import { allocator } from '../read/core';
import { findLibrary, libraries } from '../read/libraries';
import { parseHeapV2, unsampleFactor } from './profile-heap';
import { buildPprof, decodePprof, readPprof, topTable, type StackValue } from './profile-pprof';
import type { TopEntry } from './profile-heap';
import { parseMaps, Symbolizer, type Frame } from './profile-symbols';
import { checkKeys, checkNumber, checkOptions, describe } from '../base/validate';
import type { AllocatorName } from '../base/types';

export type { TopEntry } from './profile-heap';

/** What heapProfile() returns. */
export interface HeapProfile {
  allocator: AllocatorName;
  /** Mean bytes between two samples (2^lg_prof_sample). */
  samplePeriodBytes: number;
  /**
   * Estimated live bytes the sampled stacks stand for (each stack's sampled bytes scaled by
   * 1 / (1 - exp(-meanSize / samplePeriodBytes))). With `base`: the change since the base.
   */
  sampledBytes: number;
  /** Estimated live objects, likewise. */
  sampledObjects: number;
  /** Whether jemalloc was sampling (prof.active) when the profile was taken. */
  active: boolean;
  /** Time the dump held jemalloc's profiling locks, ms (NaN for a dump read from a file). */
  dumpMs: number;
  /** Whether this is a difference against `base`. */
  diff: boolean;
  /** Gzipped profile.proto: sample types inuse_objects/count and inuse_space/bytes. */
  pprof: Buffer;
  /** The heaviest functions by self bytes. */
  top: TopEntry[];
}

export interface HeapProfileOptions {
  /** An earlier profile (or its `pprof` bytes) of this process: the result shows the change since. */
  base?: HeapProfile | Uint8Array;
  /** Rows in `top` (default 25). */
  top?: number;
}

/** Whether jemalloc's heap profiler can be used in this process, and what it is doing. */
export interface HeapProfilerStatus {
  available: boolean;
  active: boolean;
  samplePeriodBytes: number | null;
  /** Why it is not available, with what to run instead; null when available. */
  reason: string | null;
}

const profileFile = 'heap.pb.gz';

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The command that starts this process again with jemalloc's profiler (the library found here). */
export function profilingCommand(): string {
  const lib = findLibrary('jemalloc');
  const cmd = [process.execPath.split('/').pop()!, ...process.argv.slice(1)].map(shellQuote).join(' ');
  const env = `MALLOC_CONF=prof:true,prof_active:true,lg_prof_sample:19 LD_PRELOAD=${shellQuote(lib ?? '/path/to/libjemalloc.so.2')}`;
  return (
    (lib ? '' : `install jemalloc (${libraries.jemalloc.install}), then `) +
    `${env} ${cmd}, or: fragstat run --profile ${profileFile} -- ${cmd}`
  );
}

export function heapProfilerStatus(): HeapProfilerStatus {
  const s = binding.profileState();
  const period = s.lgSample === null ? null : 2 ** s.lgSample;
  let reason: string | null = null;
  if (!s.jemalloc) {
    reason =
      `heap profiles come from jemalloc's profiler and this process allocates with ${allocator().name}; ` +
      `start it with: ${profilingCommand()}`;
  } else if (!s.config) {
    reason =
      'this jemalloc was built without profiling (--enable-prof); use one built with it ' +
      `(Debian's and Ubuntu's libjemalloc2 are), e.g.: ${profilingCommand()}`;
  } else if (!s.enabled) {
    reason = `jemalloc was started without profiling (prof:true in MALLOC_CONF); start it with: ${profilingCommand()}`;
  }
  return { available: reason === null, active: s.active, samplePeriodBytes: period, reason };
}

function unavailable(reason: string): Error {
  return Object.assign(new Error(`fragstat: no heap profile: ${reason}`), {
    code: 'ERR_FRAGSTAT_PROFILE_UNAVAILABLE',
  });
}

/**
 * Starts or stops sampling (jemalloc's prof.active) and returns whether it was on. Throws
 * ERR_FRAGSTAT_PROFILE_UNAVAILABLE where jemalloc's profiler is not available.
 */
export function setHeapProfilerActive(active: boolean): boolean {
  if (typeof active !== 'boolean')
    throw new TypeError(`Expected a boolean for active but received ${describe(active)}`);
  const s = heapProfilerStatus();
  if (!s.available) throw unavailable(s.reason!);
  return binding.profileSetActive(active);
}

/**
 * Names the JavaScript functions in the stacks of allocations made on the main thread (jemalloc
 * 5.3's experimental.hooks.prof_backtrace, following V8's frame pointers past the builtin where
 * native unwinding stops). The functions are named from V8's perf map: start node with
 * --perf-basic-prof (and --interpreted-frames-native-stack to name functions that are still
 * interpreted); without it JavaScript frames show as [jit]. Call on the main thread.
 */
export function setHeapProfilerJsFrames(enabled: boolean): void {
  if (typeof enabled !== 'boolean') {
    throw new TypeError(`Expected a boolean for enabled but received ${describe(enabled)}`);
  }
  const s = heapProfilerStatus();
  if (!s.available) throw unavailable(s.reason!);
  binding.profileSetJsFrames(enabled);
}

/** Where V8 writes the perf map of process `pid` under --perf-basic-prof. */
export const perfMapPath = (pid: number) => `/tmp/perf-${pid}.map`;

// jemalloc's own frames, fragstat's backtrace hook, and the allocation entry points above the code
// that asked for memory.
const entryPoint =
  /^(operator new|operator new\[\]|malloc|calloc|realloc|reallocarray|posix_memalign|aligned_alloc|memalign|valloc|pvalloc|mallocx|rallocx|xallocx|__libc_(malloc|calloc|realloc|memalign))(\(|$)/;

// The addon's own file: its hook's frame starts every stack when JavaScript frames are on (by path,
// since the prebuilt addon is stripped of the names that would say so).
let ownAddon: string | null | undefined;
function isOwnAddon(file: string): boolean {
  if (ownAddon === undefined) {
    try {
      ownAddon = bindingPath ? realpathSync(bindingPath) : null;
    } catch {
      ownAddon = null;
    }
  }
  return file === ownAddon;
}

function isAllocatorFrame(f: Frame | undefined): boolean {
  if (!f) return false;
  if (f.mapping && (/\/libjemalloc[^/]*$/.test(f.mapping.path) || isOwnAddon(f.mapping.path))) return true;
  return entryPoint.test(f.name) || f.name.startsWith('fragstat::');
}

const stackKey = (addresses: number[]) => addresses.join(',');

/**
 * Takes a heap profile of this process: jemalloc's sampled live allocations, symbolized
 * in-process, as a pprof file and a top table. Rejects with ERR_FRAGSTAT_PROFILE_UNAVAILABLE
 * (naming the command to run instead) when jemalloc's profiler is not available.
 */
export async function heapProfile(options?: HeapProfileOptions): Promise<HeapProfile> {
  const o = checkOptions('heapProfile options', options);
  checkKeys('heapProfile options', o, ['base', 'top']);
  const limit = checkNumber('top', o.top, 25, 1, 100000, true);
  let base: StackValue[] | null = null;
  if (o.base !== undefined) {
    const b = o.base as { pprof?: unknown } | Uint8Array;
    const bytes = b instanceof Uint8Array ? b : b && typeof b === 'object' ? b.pprof : undefined;
    if (!(bytes instanceof Uint8Array)) {
      throw new TypeError(
        `Expected a heap profile or its pprof bytes for base but received ${describe(o.base)}`,
      );
    }
    try {
      base = readPprof(decodePprof(bytes)).stacks;
    } catch (err) {
      throw new TypeError(`Expected a heap profile or its pprof bytes for base: ${(err as Error).message}`);
    }
  }

  const status = heapProfilerStatus();
  if (!status.available) throw unavailable(status.reason!);
  const timeMs = Date.now();
  const { text, durationMs } = await binding.profileDump(process.env.TMPDIR || tmpdir());
  return fromDump(text, {
    base,
    limit,
    timeMs,
    dumpMs: durationMs,
    active: status.active,
    allocatorName: allocator().name,
    perfMap: perfMapPath(process.pid),
  });
}

/**
 * A profile from a heap_v2 dump written by a process (possibly another one that has exited: the
 * dump carries its mappings, and the mapped files are read from disk). For `fragstat run --profile`.
 */
export async function heapProfileFromDump(
  text: string,
  options: { base?: Uint8Array; top?: number; timeMs?: number; perfMap?: string } = {},
): Promise<HeapProfile> {
  return fromDump(text, {
    base: options.base ? readPprof(decodePprof(options.base)).stacks : null,
    limit: options.top ?? 25,
    timeMs: options.timeMs ?? Date.now(),
    dumpMs: NaN,
    active: true,
    allocatorName: 'jemalloc',
    perfMap: options.perfMap ?? null,
  });
}

interface FromDump {
  base: StackValue[] | null;
  limit: number;
  timeMs: number;
  dumpMs: number;
  active: boolean;
  allocatorName: AllocatorName;
  perfMap: string | null;
}

async function fromDump(text: string, o: FromDump): Promise<HeapProfile> {
  const { base, limit, timeMs } = o;
  const dump = parseHeapV2(text);
  const maps = parseMaps(dump.maps || readFileSync('/proc/self/maps', 'utf8'));
  const symbolizer = new Symbolizer(maps, (names) => binding.demangle(names), o.perfMap);
  // Every frame but the innermost is a return address: look up the call instruction before it.
  const callers = dump.stacks.map((s) => s.addresses.map((a, i) => (i === 0 ? a : a - 1)));
  const frames = await symbolizer.resolve(new Set(callers.flat()));

  const merged = new Map<string, StackValue>();
  for (let i = 0; i < dump.stacks.length; i++) {
    const s = dump.stacks[i];
    let addresses = callers[i];
    let skip = 0;
    while (skip < addresses.length - 1 && isAllocatorFrame(frames.get(addresses[skip]))) skip++;
    addresses = addresses.slice(skip);
    const factor = unsampleFactor(s.sampledObjects, s.sampledBytes, dump.samplePeriodBytes);
    const key = stackKey(addresses);
    const v = merged.get(key) ?? { addresses, objects: 0, bytes: 0 };
    v.objects += s.sampledObjects * factor;
    v.bytes += s.sampledBytes * factor;
    merged.set(key, v);
  }
  if (base) {
    const missing: number[] = [];
    for (const b of base) {
      const key = stackKey(b.addresses);
      const v = merged.get(key);
      if (v) {
        v.objects -= b.objects;
        v.bytes -= b.bytes;
      } else {
        merged.set(key, { addresses: b.addresses, objects: -b.objects, bytes: -b.bytes });
        missing.push(...b.addresses);
      }
    }
    await symbolizer.resolve(missing);
  }
  const stacks = [...merged.values()].filter((s) => Math.round(s.bytes) !== 0 || Math.round(s.objects) !== 0);
  const named = stacks.map((s) => ({
    ...s,
    names: s.addresses.map((a) => frames.get(a)?.name ?? '[unknown]'),
  }));
  const pprof = buildPprof(stacks, frames, {
    samplePeriodBytes: dump.samplePeriodBytes,
    timeMs,
    comment: base ? 'fragstat heap profile: change since the base profile' : 'fragstat heap profile',
  });
  return {
    allocator: o.allocatorName,
    samplePeriodBytes: dump.samplePeriodBytes,
    sampledBytes: Math.round(stacks.reduce((t, s) => t + s.bytes, 0)),
    sampledObjects: Math.round(stacks.reduce((t, s) => t + s.objects, 0)),
    active: o.active,
    dumpMs: o.dumpMs,
    diff: base !== null,
    pprof,
    top: topTable(named, limit),
  };
}
