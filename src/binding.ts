// The only module that touches the compiled addon. Everything else imports this typed interface.
import * as path from 'node:path';

/** Layout of the Float64Array a snapshot is written into (mirrors native/addon.cc). */
export const enum Slot {
  Rss = 0,
  Allocated = 1,
  Free = 2,
  Heap = 3,
  LargestFree = 4,
  Arenas = 5,
  MayWrap = 6,
  DurationMs = 7,
  RawStart = 8,
}

/** Layout of the Float64Array a trim is written into (mirrors native/addon.cc). */
export const enum TrimSlot {
  Supported = 0,
  RssBefore = 1,
  RssAfter = 2,
  DurationMs = 3,
  Result = 4,
  BlockingMs = 5,
}

export interface NativeAllocatorInfo {
  name: 'glibc' | 'jemalloc' | 'tcmalloc' | 'mimalloc' | 'unknown';
  version: string | null;
  limitations: string | null;
  hasStats: boolean;
  hasDetail: boolean;
  canTrim: boolean;
  rawFields: string[];
}

export interface NativeArenaDetail {
  index: number;
  systemBytes: number;
  maxSystemBytes: number;
  freeBytes: number;
  freeChunks: number;
  fastBytes: number;
  fastChunks: number;
  topBytes: number;
  largestFreeBytes: number;
}

export interface NativeDetail {
  arenas: NativeArenaDetail[];
  mmapChunks: number | null;
  mmapBytes: number | null;
}

/** jemalloc's heap profiler as mallctl reports it (all false when jemalloc does not serve malloc). */
export interface NativeProfileState {
  jemalloc: boolean;
  /** Built with profiling (config.prof). */
  config: boolean;
  /** Started with profiling (opt.prof). */
  enabled: boolean;
  /** Sampling now (prof.active). */
  active: boolean;
  /** prof.lg_sample: log2 of the mean bytes between samples. */
  lgSample: number | null;
}

export interface NativeBinding {
  allocator(): NativeAllocatorInfo;
  /** Pins the arrays that snapshot() and trimSync() write into, for this thread. */
  bind(values: Float64Array, trimValues: Float64Array): void;
  /** Writes into the bound values array. */
  snapshot(detail: boolean): NativeDetail | undefined;
  snapshotAsync(detail: boolean, target: Float64Array): Promise<NativeDetail | undefined>;
  /** Writes into the bound trim array. */
  trimSync(): void;
  trim(target: Float64Array): Promise<void>;
  rssBytes(): number;
  rssBytesReopen(): number;
  /** Benchmark only: mean ns of the raw allocator + RSS reading, looped in C++. */
  rawReadNs(iterations: number): number;
  profileState(): NativeProfileState;
  /** Sets prof.active; returns the value it had. */
  profileSetActive(active: boolean): boolean;
  /** prof.dump into a private file in `dir`, read back and removed (on a pool thread). */
  profileDump(dir: string): Promise<{ text: string; durationMs: number }>;
  /** The same on the calling thread (for process exit). */
  profileDumpSync(dir: string): { text: string; durationMs: number };
  /** Installs (or removes) the backtrace hook that follows frame pointers through JIT frames. */
  profileSetJsFrames(on: boolean): void;
  /** Demangled C++ names, "" for a name that is not mangled. */
  demangle(names: string[]): string[];
  readonly SNAPSHOT_SLOTS: number;
  readonly TRIM_SLOTS: number;
}

export const packageRoot = path.join(__dirname, '..');

/** Path of the compiled addon node-gyp-build would load, or the error that stopped it. */
export let bindingPath: string | null = null;
/** Why the compiled addon could not be loaded, or null when it was. */
export let loadError: Error | null = null;

function fallback(reason: string): NativeBinding {
  // Without the addon, fragstat still answers: RSS from Node itself, everything else unknown.
  const info: NativeAllocatorInfo = {
    name: 'unknown',
    version: null,
    limitations: reason,
    hasStats: false,
    hasDetail: false,
    canTrim: false,
    rawFields: [],
  };
  const rss = (): number => process.memoryUsage.rss();
  let bound: Float64Array | null = null;
  let boundTrim: Float64Array | null = null;
  const fill = (target: Float64Array): undefined => {
    target.fill(NaN);
    target[Slot.Rss] = rss();
    target[Slot.MayWrap] = 0;
    target[Slot.DurationMs] = 0;
    return undefined;
  };
  const trimFill = (target: Float64Array): void => {
    target.fill(NaN);
    target[TrimSlot.Supported] = 0;
  };
  return {
    allocator: () => ({ ...info, rawFields: [] }),
    bind: (values, trimValues) => {
      bound = values;
      boundTrim = trimValues;
    },
    snapshot: () => fill(bound!),
    snapshotAsync: async (_detail, target) => fill(target),
    trimSync: () => trimFill(boundTrim!),
    trim: async (target) => trimFill(target),
    rssBytes: rss,
    rssBytesReopen: rss,
    rawReadNs: () => NaN,
    profileState: () => ({ jemalloc: false, config: false, enabled: false, active: false, lgSample: null }),
    profileSetActive: () => false,
    profileDump: () => Promise.reject(new Error(reason)),
    profileDumpSync: () => {
      throw new Error(reason);
    },
    profileSetJsFrames: () => {
      throw new Error(reason);
    },
    demangle: (names) => names.map(() => ''),
    SNAPSHOT_SLOTS: Slot.RawStart + 24,
    TRIM_SLOTS: 6,
  };
}

function load(): NativeBinding {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const nodeGypBuild = require('node-gyp-build') as {
    (dir: string): unknown;
    resolve(dir: string): string;
  };
  try {
    bindingPath = nodeGypBuild.resolve(packageRoot);
    return nodeGypBuild(packageRoot) as NativeBinding;
  } catch (err) {
    loadError = err as Error;
    const hint =
      process.platform !== 'linux'
        ? `fragstat reads Linux allocators; on ${process.platform} it reports RSS only`
        : `the compiled addon did not load (${loadError.message.split('\n')[0]}); ` +
          'reinstall with build tools present (python3, make, g++) so it can be built from source, ' +
          'or check that the prebuild matches this libc';
    return fallback(hint);
  }
}

export const binding: NativeBinding = load();
