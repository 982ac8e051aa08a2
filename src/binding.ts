// The only module that touches the compiled addon. Everything else imports this typed interface.
import { existsSync } from 'node:fs';
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
  StatsAgeMs = 8,
  RawStart = 9,
}

/** Layout of the Float64Array a trim is written into (mirrors native/addon.cc). */
export const enum TrimSlot {
  Supported = 0,
  RssBefore = 1,
  RssAfter = 2,
  DurationMs = 3,
  Result = 4,
  BlockingMs = 5,
  BeyondBytes = 6,
  PendingArenas = 7,
}

export interface NativeAllocatorInfo {
  name: 'glibc' | 'jemalloc' | 'tcmalloc' | 'mimalloc' | 'unknown';
  version: string | null;
  limitations: string | null;
  hasStats: boolean;
  hasDetail: boolean;
  canTrim: boolean;
  trimsThreadArenaTops: boolean;
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

/** The allocator's own statistics report, as text. */
export interface NativeStatsText {
  /** 'malloc_info' (glibc's XML) or 'jemalloc_stats' (malloc_stats_print's text). */
  format: 'malloc_info' | 'jemalloc_stats';
  text: string;
  /** The report went on beyond maxBytes and was cut there. */
  truncated: boolean;
}

/**
 * How V8 is asked for its free pages (native/v8heap.h): 0, v8::Isolate::MemoryPressureNotification
 * (kCritical); 1, node::LowMemoryNotification().
 */
export type V8ReleaseMethod = 0 | 1;

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
  /** The allocator's metadata in RAM where a snapshot does not carry it (tcmalloc), else NaN. */
  metadataBytes(): number;
  /** Benchmark only: mean ns of the raw allocator + RSS reading, looped in C++. */
  rawReadNs(iterations: number): number;
  /** Settings the running allocator lets a process read, under its own names. */
  allocatorSettings(): Record<string, number | boolean | string | null>;
  /** glibc: fragstat's own mallopt calls in this process, last value per parameter. */
  malloptCalls(): Record<string, number>;
  /** glibc mallopt by parameter name; throws a coded Error when glibc refuses. */
  mallopt(param: string, value: number): void;
  /** Writes one allocator setting (names in native/tunables.cc); throws a coded Error. */
  writeSetting(name: string, value: number | boolean): void;
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
  /**
   * The allocator's statistics report (glibc malloc_info XML, jemalloc malloc_stats_print text),
   * at most `maxBytes` of it, read on a pool thread; null where the allocator has none.
   */
  statsText(maxBytes: number): Promise<NativeStatsText | null>;
  /** Whether this runtime exports what V8 release `method` needs (V8ReleaseMethod). */
  v8ReleaseAvailable(method: V8ReleaseMethod): boolean;
  /**
   * Asks the calling thread's V8 isolate to give its free heap pages back, synchronously (V8
   * collects garbage inside the call); false when the runtime lacks the entry points.
   */
  releaseV8Heap(method: V8ReleaseMethod): boolean;
  /**
   * Claims the process's monitor for a thread (worker_threads' threadId): -1 when granted (claims
   * by the same thread count up), else the thread holding it. Shared by every thread.
   */
  claimMonitor(threadId: number): number;
  /** Gives one claim back. */
  releaseMonitor(threadId: number): void;
  readonly SNAPSHOT_SLOTS: number;
  readonly TRIM_SLOTS: number;
}

// __dirname is undefined once a bundler has put this module into an ES module bundle.
export const packageRoot = path.join(typeof __dirname === 'string' ? __dirname : '.', '..');

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
    trimsThreadArenaTops: false,
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
    metadataBytes: () => NaN,
    rawReadNs: () => NaN,
    allocatorSettings: () => ({}),
    malloptCalls: () => ({}),
    mallopt: () => {
      throw Object.assign(new Error(`mallopt is unavailable: ${reason}`), {
        code: 'ERR_FRAGSTAT_TUNE_UNSUPPORTED',
      });
    },
    writeSetting: () => {
      throw Object.assign(new Error(`allocator settings are unavailable: ${reason}`), {
        code: 'ERR_FRAGSTAT_TUNE_UNSUPPORTED',
      });
    },
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
    statsText: async () => null,
    v8ReleaseAvailable: () => false,
    releaseV8Heap: () => false,
    // Without the addon there is nothing process-wide to share: every thread is granted.
    claimMonitor: () => -1,
    releaseMonitor: () => undefined,
    SNAPSHOT_SLOTS: Slot.RawStart + 24,
    TRIM_SLOTS: 8,
  };
}

/** native/: binding.gyp and the C++ sources, native/prebuilds/ (shipped), native/build/ (local build). */
export const nativeRoot = path.join(packageRoot, 'native');

/** What a user should read when the addon did not load: why, and what to do about it. */
function explainLoadError(err: Error): string {
  const first = err.message.split('\n')[0];
  if (process.platform !== 'linux') {
    return `fragstat reads Linux allocators; on ${process.platform} it reports RSS only`;
  }
  if (!existsSync(path.join(nativeRoot, 'binding.gyp'))) {
    return (
      `fragstat has been bundled and its compiled addon is not next to the bundle (${first}): ` +
      `copy node_modules/fragstat/native/prebuilds to ${bundleDir()}/prebuilds, ` +
      'or mark fragstat as external (esbuild --external:fragstat) so it loads from node_modules'
    );
  }
  if (/^No native build was found/.test(first)) {
    return (
      `no prebuilt addon fits this system (${first.replace(/^No native build was found for /, '')}; ` +
      'prebuilds ship for linux-x64 and linux-arm64 with glibc), so fragstat reports RSS only. ' +
      'To build the addon from source, install python3, make and g++ ' +
      '(Debian/Ubuntu: apt-get install python3 make g++; Alpine: apk add build-base python3), ' +
      'add node-addon-api to the project (npm install node-addon-api), and run ' +
      `"npx node-gyp rebuild" in ${nativeRoot}`
    );
  }
  return `the compiled addon did not load (${first}), so fragstat reports RSS only`;
}

/** Directory of the running bundle: the main script's. */
function bundleDir(): string {
  return path.dirname(path.resolve(process.argv[1] ?? '.'));
}

/**
 * The addon in a bundle's prebuilds/: prebuilds/<platform>-<arch>/fragstat.<libc>.node, as
 * prebuildify names it. A bundle may carry no node-gyp-build (an ES module bundle cannot run its
 * CommonJS), so this one layout is looked up here.
 */
function bundledAddon(dir: string): string {
  const libc = process.platform === 'linux' && existsSync('/etc/alpine-release') ? 'musl' : 'glibc';
  const where = path.join(dir, 'prebuilds', `${process.platform}-${process.arch}`);
  for (const name of [`fragstat.${libc}.node`, 'fragstat.node']) {
    if (existsSync(path.join(where, name))) return path.join(where, name);
  }
  throw new Error(
    `No native build was found for platform=${process.platform} arch=${process.arch} libc=${libc}\n    loaded from: ${dir}`,
  );
}

function load(): NativeBinding {
  // Bundled (fragstat's own files are not beside this code): the prebuilds/ copied next to the bundle.
  const bundled = !existsSync(path.join(nativeRoot, 'binding.gyp'));
  try {
    if (bundled) {
      bindingPath = bundledAddon(bundleDir());
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      return require(bindingPath) as NativeBinding;
    }
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const nodeGypBuild = require('node-gyp-build') as {
      (dir: string): unknown;
      resolve(dir: string): string;
    };
    bindingPath = nodeGypBuild.resolve(nativeRoot);
    return nodeGypBuild(nativeRoot) as NativeBinding;
  } catch (err) {
    loadError = err as Error;
    const reason = explainLoadError(loadError);
    // A bundle deployed without its addon is a build mistake: say so once, not only in allocator().
    if (bundled) process.emitWarning(reason, { code: 'FRAGSTAT_BUNDLED_WITHOUT_ADDON' });
    // One stand-in per process, as the addon's exports are one per process: the CommonJS and the
    // ES module builds keep their shared state on it (core.ts, reading.ts).
    const g = globalThis as { [key: symbol]: NativeBinding | undefined };
    return (g[Symbol.for(`fragstat.fallback ${nativeRoot}`)] ??= fallback(reason));
  }
}

export const binding: NativeBinding = load();
