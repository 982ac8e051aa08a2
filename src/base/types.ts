/** Allocators fragstat recognises. */
export type AllocatorName = 'glibc' | 'jemalloc' | 'tcmalloc' | 'mimalloc' | 'unknown';

/** What serves malloc in this process, as detected once when fragstat loads. */
export interface AllocatorInfo {
  /** The allocator serving malloc: found by asking each candidate whether it owns a fresh block. */
  name: AllocatorName;
  /** The allocator's own version string (glibc `gnu_get_libc_version`, jemalloc `version`, ...). */
  version: string | null;
  /** What this allocator (or this build of it) cannot report, in words; null when nothing is missing. */
  limitations: string | null;
  /** Whether snapshots carry allocator figures (allocatedBytes and friends) beyond rssBytes. */
  hasStats: boolean;
  /** Whether `snapshot({ detail: true })` adds per-arena figures and largestFreeBytes. */
  hasDetail: boolean;
  /** Whether trim() can release memory under this allocator. */
  canTrim: boolean;
  /**
   * glibc: whether trim() also releases the free tops of thread arenas, which malloc_trim does not
   * (glibc 2.27 to 2.42, unless FRAGSTAT_ARENA_TOPS=0 was set at start-up; see trim()).
   */
  trimsThreadArenaTops: boolean;
  /** Names of the allocator's own fields found in `Snapshot.raw`. */
  rawFields: string[];
  /** Whether the compiled addon is loaded. When false, `limitations` says why and only RSS is known. */
  native: boolean;
}

/** Figures of one glibc arena, from malloc_info (with `detail: true`). All sizes in bytes. */
export interface ArenaDetail {
  /** Arena number as malloc_info prints it (0 is the main arena). */
  index: number;
  /** Memory the arena has obtained from the OS (`<system type="current">`). */
  systemBytes: number;
  /** The most it ever held (`<system type="max">`). */
  maxSystemBytes: number;
  /** Free bytes in the arena: fastbins + bins + top chunk, chunk sizes with headers. */
  freeBytes: number;
  /** Free chunks: fastbin chunks + bin chunks + 1 for the top chunk. */
  freeChunks: number;
  /** Bytes in fastbin chunks. */
  fastBytes: number;
  /** Chunks in fastbins. */
  fastChunks: number;
  /** Size of the arena's top chunk (the free space at its end, which a trim can shrink). */
  topBytes: number;
  /** Largest free chunk of the arena, top chunk included. */
  largestFreeBytes: number;
}

/** Expensive figures, present when a snapshot was taken with `detail: true` on glibc. */
export interface SnapshotDetail {
  arenas: ArenaDetail[];
  /** Chunks served by their own mmap (large allocations), from malloc_info's global totals. */
  mmapChunks: number | null;
  /** Bytes in those chunks. */
  mmapBytes: number | null;
}

/** Fragmentation figures derived from a snapshot; null where an input is unknown or zero. */
export interface Ratios {
  /** freeBytes / heapBytes: the share of the allocator's heap that serves no live allocation. */
  fragmentation: number | null;
  /** 1 - largestFreeBytes / freeBytes: how scattered the free memory is (0 = one block). Needs `detail`. */
  external: number | null;
  /**
   * (allocatedBytes + residentFreeBytes) / allocatedBytes: the RAM the allocator holds per live
   * byte (1 = nothing resident beyond live data). Null where residentFreeBytes is unknown. It used to
   * be rssBytes / allocatedBytes, which is 14 to 19 on a healthy idle Node process because code and
   * V8's heap dominate its RSS; the allocator's own share is what it can tell.
   */
  rss: number | null;
  /** residentFreeBytes / (allocatedBytes + residentFreeBytes): the share of the allocator's RAM that is free. */
  residentFragmentation: number | null;
}

/** One reading of the allocator's statistics and the process's RSS. Sizes in bytes. */
export interface Snapshot {
  allocator: AllocatorName;
  /** When the snapshot was taken, in milliseconds since the Unix epoch. */
  timestamp: number;
  /** Resident set size of the whole process, from /proc/self/statm. */
  rssBytes: number | null;
  /** Bytes in live allocations, as the allocator counts them. */
  allocatedBytes: number | null;
  /** Bytes the allocator holds that serve no allocation (resident or not). */
  freeBytes: number | null;
  /**
   * The part of freeBytes that is in RAM now: what a trim or another allocator could win back.
   * jemalloc: stats.resident - stats.metadata - allocatedBytes; tcmalloc: freeBytes (released
   * pages are already left out); glibc: with `detail: true`, the resident pages of its arenas
   * (from /proc/self/smaps) less the bytes live in them, so it falls when a trim releases pages,
   * which freeBytes does not; else null. mimalloc and unknown allocators: null.
   */
  residentFreeBytes: number | null;
  /** The allocator's footprint: allocatedBytes + freeBytes where both are known. */
  heapBytes: number | null;
  /** Largest single free block; glibc with `detail: true` only, else null. */
  largestFreeBytes: number | null;
  /** Number of arenas in use; jemalloc always, glibc with `detail: true`, else null. */
  arenas: number | null;
  ratios: Ratios;
  /**
   * How long reading the allocator and RSS took, in milliseconds (on the JS thread for
   * snapshot(), on a pool thread for snapshotAsync()). Grows with free chunks under glibc.
   */
  durationMs: number;
  /**
   * How old the allocator figures are, in milliseconds: 0 where the allocator is read at every
   * call (glibc, tcmalloc, mimalloc). jemalloc's statistics are refreshed at most once every
   * 10 ms (a refresh costs 11-13 times process.memoryUsage()), so under jemalloc this is 0 to 10.
   * rssBytes is always read at the call. Null when there are no allocator figures.
   */
  statsAgeMs: number | null;
  /**
   * True when the figures come from glibc's legacy `mallinfo` (glibc older than 2.33), whose
   * fields are 32-bit and wrap above 4 GiB: large values may be wrong.
   */
  mayHaveWrapped: boolean;
  /** The allocator's own fields, untouched (every mallinfo2 field, jemalloc's mallctl stats, ...). */
  raw: Record<string, number | null>;
  /** Per-arena figures with `detail: true` where the allocator has them, else null. */
  detail: SnapshotDetail | null;
}

export interface SnapshotOptions {
  /**
   * Also read the expensive figures: on glibc, malloc_info (per-arena free chunks, arena count,
   * largest free chunk). It walks every free chunk under each arena's lock: about 20 ms per
   * million free chunks. Default false.
   */
  detail?: boolean;
  /**
   * On glibc, also read /proc/self/smaps so that residentFreeBytes (free memory in RAM, which
   * fordblks overstates once a trim has given pages back) is known, without detail's malloc_info
   * walk: a file read off the JS thread in snapshotAsync (about 3 ms at 300 mappings) and a parse
   * on it (about 0.3 ms per 100 mappings). The other allocators give that figure always. In
   * snapshotAsync a read that waited over a second for a pool thread leaves the figure null (it
   * would describe a later moment than the allocator's figures). Default false (true with detail).
   */
  residentFree?: boolean;
}

/** What a trim released. */
export interface TrimResult {
  allocator: AllocatorName;
  /** When the trim started, in milliseconds since the Unix epoch. */
  timestamp: number;
  /** False where the allocator cannot trim (then every figure below is null). */
  supported: boolean;
  /** RSS just before the trim's first releasing call (not when trim() was called: see the README). */
  rssBeforeBytes: number | null;
  /** RSS just after it. */
  rssAfterBytes: number | null;
  /**
   * rssBeforeBytes - rssAfterBytes. Negative when other threads grew RSS during the trim more
   * than it released.
   */
  releasedBytes: number | null;
  /** How long the allocator's trim calls took, in milliseconds (RSS reads excluded). */
  durationMs: number | null;
  /**
   * How long of that the calling (JS) thread was blocked, in milliseconds: all of it for
   * trimSync(); for trim(), only what must run on the calling thread (jemalloc's thread-cache
   * flush: microseconds; mimalloc's collect of the JS thread's heap: see the README).
   */
  blockingMs: number | null;
  /** The allocator's own return value: malloc_trim's 1 (something released) or 0; null where it returns nothing. */
  returnValue: number | null;
  /**
   * glibc: resident bytes released from the free top chunks of thread arenas, which
   * malloc_trim never shrinks (counted in /proc/self/pagemap just before the release; part of
   * releasedBytes). Only arenas an earlier trim saw at least a second before are released, so a
   * first trim after an arena appears only notes it. null under other allocators, on glibc
   * releases this layout is not known for (outside 2.27-2.42), with FRAGSTAT_ARENA_TOPS=0, or
   * where a system call the step needs was refused (a seccomp filter returning EPERM, say).
   */
  threadArenaTopBytes: number | null;
  /**
   * glibc: thread arenas whose tops this trim left for a later one, because it saw them for the
   * first time or glibc created them less than a second before; a trim a second or more later
   * releases them. null where threadArenaTopBytes is.
   */
  threadArenasPending: number | null;
}
