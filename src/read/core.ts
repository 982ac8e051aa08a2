// The core API: allocator detection, snapshots and trims. Everything else builds on these.
import { binding, loadError, Slot, TrimSlot, type NativeDetail } from '../binding';
import { glibcResidentFree, readSmaps, readSmapsAsync, type Smaps } from './smaps';
import { checkBoolean, checkKeys, checkOptions, describe } from '../base/validate';
import type { AllocatorInfo, AllocatorName, Snapshot, SnapshotOptions, TrimResult } from '../base/types';

const info = binding.allocator();
const rawFields = info.rawFields.slice();
const name: AllocatorName = info.name;
// Arrays every synchronous call writes into: one pair per loaded addon (per thread), kept on the
// addon's exports so that a second evaluation of this module (jest.resetModules, a cleared
// require cache) shares them instead of taking them over.
const shared = binding as typeof binding & {
  syncArrays?: { values: Float64Array; trim: Float64Array };
  trimLog?: TrimLog;
};
if (!shared.syncArrays) {
  shared.syncArrays = {
    values: new Float64Array(binding.SNAPSHOT_SLOTS),
    trim: new Float64Array(binding.TRIM_SLOTS),
  };
  binding.bind(shared.syncArrays.values, shared.syncArrays.trim);
}
const syncValues = shared.syncArrays.values;
const syncTrim = shared.syncArrays.trim;

const orNull = (v: number): number | null => (Number.isNaN(v) ? null : v);

const R = Slot.RawStart;
type RawBuilder = (v: Float64Array) => Record<string, number | null>;

// Object literals with constant keys give every snapshot's `raw` one fast shape (4x cheaper than
// adding keys in a loop, which matters on a 2 us call). Used only when the addon reports exactly
// these names, in this order; anything else takes the generic loop.
const rawBuilders: Record<string, RawBuilder> = {
  glibc: (v) => ({
    arena: orNull(v[R]),
    ordblks: orNull(v[R + 1]),
    smblks: orNull(v[R + 2]),
    hblks: orNull(v[R + 3]),
    hblkhd: orNull(v[R + 4]),
    usmblks: orNull(v[R + 5]),
    fsmblks: orNull(v[R + 6]),
    uordblks: orNull(v[R + 7]),
    fordblks: orNull(v[R + 8]),
    keepcost: orNull(v[R + 9]),
  }),
  jemalloc: (v) => ({
    'stats.allocated': orNull(v[R]),
    'stats.active': orNull(v[R + 1]),
    'stats.metadata': orNull(v[R + 2]),
    'stats.resident': orNull(v[R + 3]),
    'stats.mapped': orNull(v[R + 4]),
    'stats.retained': orNull(v[R + 5]),
    'stats.arenas.all.pdirty': orNull(v[R + 6]),
    'stats.arenas.all.pmuzzy': orNull(v[R + 7]),
    'arenas.narenas': orNull(v[R + 8]),
    'arenas.page': orNull(v[R + 9]),
    'stats.arenas.all.tcache_bytes': orNull(v[R + 10]),
  }),
  tcmalloc: (v) => ({
    'generic.current_allocated_bytes': orNull(v[R]),
    'generic.heap_size': orNull(v[R + 1]),
    'tcmalloc.pageheap_free_bytes': orNull(v[R + 2]),
    'tcmalloc.pageheap_unmapped_bytes': orNull(v[R + 3]),
    'tcmalloc.current_total_thread_cache_bytes': orNull(v[R + 4]),
  }),
  mimalloc: (v) => ({
    current_commit: orNull(v[R]),
    peak_commit: orNull(v[R + 1]),
    peak_rss: orNull(v[R + 2]),
    page_faults: orNull(v[R + 3]),
  }),
  unknown: () => ({}),
};

function genericRaw(values: Float64Array): Record<string, number | null> {
  const raw: Record<string, number | null> = {};
  for (let i = 0; i < rawFields.length; i++) raw[rawFields[i]] = orNull(values[R + i]);
  return raw;
}

const fast = rawBuilders[name];
const buildRaw: RawBuilder =
  fast && Object.keys(fast(new Float64Array(binding.SNAPSHOT_SLOTS))).join() === rawFields.join()
    ? fast
    : genericRaw;

function readOptions(fn: string, options: unknown): { detail: boolean; smaps: boolean } {
  const o = checkOptions(`${fn}(options)`, options);
  checkKeys(`${fn}(options)`, o, ['detail', 'residentFree']);
  const detail = checkBoolean('options.detail', o.detail, false);
  const residentFree = checkBoolean('options.residentFree', o.residentFree, false);
  // Only glibc needs smaps for its resident free figure.
  return { detail, smaps: (detail || residentFree) && name === 'glibc' };
}

function noArguments(fn: string, args: unknown[]): void {
  if (args.length > 0 && !(args.length === 1 && args[0] === undefined)) {
    throw new TypeError(`${fn}() takes no arguments but received ${describe(args[0])}`);
  }
}

/**
 * Free bytes in RAM, from the allocator's own figures where it keeps them (jemalloc, tcmalloc),
 * or from the smaps read that came with a glibc detail or residentFree snapshot.
 */
function residentFree(
  raw: Record<string, number | null>,
  allocated: number | null,
  free: number | null,
  smaps: Smaps | null | undefined,
): number | null {
  switch (name) {
    case 'jemalloc': {
      const resident = raw['stats.resident'];
      const metadata = raw['stats.metadata'];
      if (resident == null || metadata == null || allocated === null) return null;
      return Math.max(0, resident - metadata - allocated);
    }
    case 'tcmalloc':
      return free;
    case 'glibc':
      return smaps === undefined ? null : (glibcResidentFree(smaps, raw)?.residentFreeBytes ?? null);
    default:
      return null;
  }
}

function build(
  values: Float64Array,
  detail: NativeDetail | undefined,
  timestamp: number,
  smaps?: Smaps | null,
  smapsMs = 0,
): Snapshot {
  const rss = orNull(values[Slot.Rss]);
  const allocated = orNull(values[Slot.Allocated]);
  const free = orNull(values[Slot.Free]);
  const heap = orNull(values[Slot.Heap]);
  const largest = orNull(values[Slot.LargestFree]);
  const raw = buildRaw(values);
  const residentFreeBytes = residentFree(raw, allocated, free, smaps);
  const held = allocated !== null && residentFreeBytes !== null ? allocated + residentFreeBytes : null;
  let external: number | null = null;
  if (largest !== null && free !== null && free > 0) {
    external = Math.min(1, Math.max(0, 1 - largest / free));
  }
  return {
    allocator: name,
    timestamp,
    rssBytes: rss,
    allocatedBytes: allocated,
    freeBytes: free,
    residentFreeBytes,
    heapBytes: heap,
    largestFreeBytes: largest,
    arenas: orNull(values[Slot.Arenas]),
    ratios: {
      fragmentation: free !== null && heap !== null && heap > 0 ? free / heap : null,
      external,
      rss: held !== null && allocated! > 0 ? held / allocated! : null,
      residentFragmentation: held !== null && held > 0 ? residentFreeBytes! / held : null,
    },
    durationMs: values[Slot.DurationMs] + smapsMs,
    statsAgeMs: orNull(values[Slot.StatsAgeMs]),
    mayHaveWrapped: values[Slot.MayWrap] === 1,
    raw,
    detail: detail ?? null,
  };
}

/** Trims done in this thread (by anyone: the application, a monitor, a health endpoint). */
export interface TrimLog {
  /** Trims that ran (supported ones only). */
  count: number;
  /** Sum of the positive releasedBytes of those trims: a monotonic counter. */
  releasedBytesTotal: number;
  /** The most recent trim, or null. */
  last: TrimResult | null;
}

// Kept on the addon's exports too, so every evaluation of this module counts the same trims.
const log: TrimLog = (shared.trimLog ??= { count: 0, releasedBytesTotal: 0, last: null });

/** What trims have done in this thread so far (a copy). */
export function trimLog(): TrimLog {
  return { ...log, last: log.last && { ...log.last } };
}

function trimResult(values: Float64Array, timestamp: number): TrimResult {
  const supported = values[TrimSlot.Supported] === 1;
  const before = orNull(values[TrimSlot.RssBefore]);
  const after = orNull(values[TrimSlot.RssAfter]);
  const result: TrimResult = {
    allocator: name,
    timestamp,
    supported,
    rssBeforeBytes: before,
    rssAfterBytes: after,
    releasedBytes: before !== null && after !== null ? before - after : null,
    durationMs: orNull(values[TrimSlot.DurationMs]),
    returnValue: orNull(values[TrimSlot.Result]),
    blockingMs: orNull(values[TrimSlot.BlockingMs]),
    threadArenaTopBytes: orNull(values[TrimSlot.BeyondBytes]),
    threadArenasPending: orNull(values[TrimSlot.PendingArenas]),
  };
  if (supported) {
    log.count++;
    log.releasedBytesTotal += Math.max(0, result.releasedBytes ?? 0);
    log.last = result;
  }
  return result;
}

/** Which allocator serves malloc in this process, and what fragstat can read from it. */
export function allocator(): AllocatorInfo {
  return { ...info, rawFields: rawFields.slice(), native: loadError === null };
}

/**
 * Reads the allocator's statistics and RSS now, on the calling thread. The default reading is
 * glibc's mallinfo2 + one pread (0.4x process.memoryUsage() on a compact heap, but it walks every
 * free chunk: 10 ms at 130 k free chunks). Under jemalloc, whose refresh costs 60-140 us, the
 * allocator figures are refreshed at most every 10 ms and may be that old (see statsAgeMs).
 * `detail: true` costs about twice as much again. In a service, prefer snapshotAsync.
 * @throws TypeError for bad options; an Error with `code` ERR_FRAGSTAT_* if the allocator fails.
 */
export function snapshot(options?: SnapshotOptions): Snapshot {
  // The common call has no options: skip building the validation's strings and arrays.
  const { detail, smaps: withSmaps } =
    options === undefined ? { detail: false, smaps: false } : readOptions('snapshot', options);
  const nativeDetail = binding.snapshot(detail);
  const t = Date.now();
  if (!withSmaps) return build(syncValues, nativeDetail, t);
  const t0 = performance.now();
  const smaps = readSmaps();
  return build(syncValues, nativeDetail, t, smaps, performance.now() - t0);
}

// How long the smaps read of snapshotAsync may take before its figures count as of another moment.
const SMAPS_STALE_MS = 1000;

/**
 * Same as snapshot(), read on a libuv pool thread. The JS thread does not run the walk, but under
 * glibc its own mallocs wait for the arena lock the walk holds (see the README).
 */
export async function snapshotAsync(options?: SnapshotOptions): Promise<Snapshot> {
  const { detail, smaps: withSmaps } = readOptions('snapshotAsync', options);
  const values = new Float64Array(binding.SNAPSHOT_SLOTS);
  const timestamp = Date.now();
  const nativeDetail = await binding.snapshotAsync(detail, values);
  if (!withSmaps) return build(values, nativeDetail, timestamp);
  const t0 = performance.now();
  const smaps = await readSmapsAsync();
  const waitedMs = performance.now() - t0;
  // A read that waited long for a pool thread (sharp or zlib filling the pool) describes a later
  // moment than the allocator's figures: residentFreeBytes is then null rather than a mix of two.
  return build(values, nativeDetail, timestamp, waitedMs <= SMAPS_STALE_MS ? smaps : null, waitedMs);
}

/**
 * Releases free memory to the OS (glibc malloc_trim(0), jemalloc purge of every arena after
 * flushing the calling thread's cache, ...) on a libuv pool thread, and reports what RSS did.
 */
export async function trim(...args: unknown[]): Promise<TrimResult> {
  noArguments('trim', args);
  const values = new Float64Array(binding.TRIM_SLOTS);
  const timestamp = Date.now();
  await binding.trim(values);
  return trimResult(values, timestamp);
}

/** trim() on the calling thread: blocks it for the whole trim (tens to hundreds of ms on a big heap). */
export function trimSync(...args: unknown[]): TrimResult {
  noArguments('trimSync', args);
  const timestamp = Date.now();
  binding.trimSync();
  return trimResult(syncTrim, timestamp);
}
