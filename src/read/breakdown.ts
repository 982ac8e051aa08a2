// Where the resident memory of the process goes: RSS split into parts that add up to it, from
// /proc/self/smaps, the allocator's own figures and V8's heap statistics.
import { getHeapStatistics } from 'node:v8';
import { binding } from '../binding';
import { snapshot, snapshotAsync } from './core';
import {
  findGlibcMemory,
  isThreadStack,
  openMemoryReader,
  readSmaps,
  readSmapsAsync,
  type Smaps,
} from './smaps';
import type { AllocatorName, Snapshot } from '../base/types';
import { checkKeys, checkOptions } from '../base/validate';

/** The resident memory of the process by owner, in bytes. The parts add up to Breakdown.rssBytes. */
export interface BreakdownParts {
  /** V8's heap (`total_physical_size`: committed heap pages), capped by the anonymous memory left. */
  v8Heap: number;
  /** Bytes live in malloc allocations that are in RAM (Buffers, zlib, TLS, addons' mallocs). */
  mallocLive: number;
  /** Free memory the allocator keeps in RAM: what a trim or another allocator could win back. */
  mallocFreeResident: number;
  /** The allocator's own metadata (jemalloc reports it; 0 where it is part of the other two). */
  allocatorOverhead: number;
  /** File-backed resident pages: the node binary, shared libraries, mapped files. */
  code: number;
  /** The main thread's and every other thread's stack. */
  stacks: number;
  /** Every other anonymous resident byte: addons' own mmaps and what no one above claims. */
  other: number;
}

export type BreakdownPart = keyof BreakdownParts;

/** RSS split by owner. */
export interface Breakdown {
  allocator: AllocatorName;
  /** When it was read, ms since the Unix epoch. */
  timestamp: number;
  /** Resident set size: the sum of every mapping's Rss in /proc/self/smaps, and of the parts. */
  rssBytes: number;
  parts: BreakdownParts;
  /**
   * Parts that are estimates under this allocator (see the README's table), e.g. mallocLive and
   * mallocFreeResident under mimalloc, whose release builds do not count live bytes.
   */
  partial: BreakdownPart[];
  /** The allocator snapshot the malloc parts come from. */
  snapshot: Snapshot;
  /** How long reading and classifying took, ms (the smaps read runs off the JS thread in breakdownAsync). */
  durationMs: number;
  /**
   * RSS from /proc/self/statm right after the smaps read, bytes (null where it cannot be read).
   * With `snapshot.rssBytes`, read right before it, it brackets the moment of the breakdown: a
   * wide gap means memory moved while the mappings were walked (a GC, a burst of allocations).
   */
  rssAfterBytes: number | null;
}

const KERNEL_NAMED_CODE = new Set(['[vdso]', '[vvar]', '[vvar_vclock]', '[vsyscall]']);

/** Splits the resident memory in `smaps` using the allocator's snapshot and V8's physical heap size. */
export function composeBreakdown(
  smaps: Smaps,
  snap: Snapshot,
  v8PhysicalBytes: number,
): Omit<Breakdown, 'durationMs' | 'rssAfterBytes'> {
  const { maps, pageSize } = smaps;
  let rss = 0;
  for (const m of maps) rss += m.rssBytes;

  const partial: BreakdownPart[] = [];
  let mallocLive = 0;
  let mallocFree = 0;
  let overhead = 0;
  let claimed = new Set<number>();
  let glibcResident = 0;
  // Arena memory glibc holds outside the mappings found: when brk cannot grow [heap] (another
  // mapping sits right after it), the main arena goes on in anonymous mmaps no header marks.
  let glibcElsewhere = 0;
  let liveElsewhere = 0;
  if (snap.allocator === 'glibc') {
    const mem = openMemoryReader(pageSize);
    if (mem === null) partial.push('mallocLive', 'mallocFreeResident', 'other');
    if (mem !== null) {
      try {
        const g = findGlibcMemory(maps, mem, pageSize, snap.raw.hblks ?? Infinity);
        claimed = g.claimed;
        const arenas = g.mainArenaRssBytes + g.threadArenaRssBytes;
        const liveInArenas = Math.min(snap.raw.uordblks ?? 0, arenas);
        mallocLive = liveInArenas + g.mmapRssBytes;
        mallocFree = arenas - liveInArenas;
        glibcResident = arenas + g.mmapRssBytes;
        const systemBytes = snap.raw.arena ?? 0;
        if (systemBytes - g.arenaMappedBytes > 1024 * 1024) {
          glibcElsewhere = systemBytes - g.arenaMappedBytes;
          liveElsewhere = Math.max(0, (snap.raw.uordblks ?? 0) - liveInArenas);
        }
      } finally {
        mem.close();
      }
    }
  }

  let code = 0;
  let stacks = 0;
  for (let i = 0; i < maps.length; i++) {
    if (claimed.has(i)) continue;
    const m = maps[i];
    if ((m.path.startsWith('/') && !m.path.startsWith('/memfd:')) || KERNEL_NAMED_CODE.has(m.path)) {
      code += m.rssBytes;
    } else if (m.path === '[stack]' || isThreadStack(maps, i)) stacks += m.rssBytes;
  }

  // Anonymous memory not yet attributed. Figures that come from V8's or the allocator's books
  // rather than from the page tables can exceed what is resident (V8 counts committed pages;
  // jemalloc's stats.resident and every allocator's live bytes include pages allocated but never
  // touched, as a zlib stream's window is): each takes at most what is left, in this order, so
  // that the parts never exceed RSS and `other` is never negative. Live bytes come last of the
  // allocator's parts because they are the ones that overcount.
  let pool = rss - code - stacks - glibcResident;
  const take = (want: number | null): number => {
    const got = Math.max(0, Math.min(want ?? 0, pool));
    pool -= got;
    return got;
  };
  const v8Heap = take(v8PhysicalBytes);
  switch (snap.allocator) {
    case 'glibc':
      if (glibcElsewhere > 0) {
        // Its live bytes are counted from glibc's books (capped by what is left); how much of its
        // free memory is resident cannot be told.
        mallocLive += take(Math.min(liveElsewhere, glibcElsewhere));
        partial.push('mallocFreeResident');
      }
      break;
    case 'jemalloc':
      mallocFree = take(snap.residentFreeBytes);
      overhead = take(snap.raw['stats.metadata'] ?? null);
      mallocLive = take(snap.allocatedBytes);
      break;
    case 'tcmalloc': {
      mallocFree = take(snap.residentFreeBytes);
      const metadata = binding.metadataBytes();
      overhead = take(Number.isNaN(metadata) ? null : metadata);
      mallocLive = take(snap.allocatedBytes);
      if (Number.isNaN(metadata)) partial.push('allocatorOverhead');
      break;
    }
    case 'mimalloc':
      // Release builds keep no live-byte count: everything mimalloc has committed (an upper
      // bound of what it holds in RAM) is shown as live.
      mallocLive = take(snap.heapBytes);
      partial.push('mallocLive', 'mallocFreeResident', 'allocatorOverhead');
      break;
    default:
      partial.push('mallocLive', 'mallocFreeResident', 'allocatorOverhead', 'other');
  }
  return {
    allocator: snap.allocator,
    timestamp: snap.timestamp,
    rssBytes: rss,
    parts: {
      v8Heap,
      mallocLive,
      mallocFreeResident: mallocFree,
      allocatorOverhead: overhead,
      code,
      stacks,
      other: pool,
    },
    partial,
    snapshot: snap,
  };
}

function noOptions(fn: string, options: unknown): void {
  checkKeys(`${fn}(options)`, checkOptions(`${fn}(options)`, options), []);
}

/** RSS from statm now, or null where it cannot be read. */
export function statmRss(): number | null {
  const rss = binding.rssBytes();
  return Number.isFinite(rss) && rss > 0 ? rss : null;
}

class SmapsUnavailable extends Error {
  code = 'ERR_FRAGSTAT_SMAPS';
  constructor() {
    super('/proc/self/smaps cannot be read here, so RSS cannot be broken down');
  }
}

/**
 * RSS broken down by owner, read on the calling thread: /proc/self/smaps (about 2 ms at 100
 * mappings, more with many), an allocator snapshot and V8's heap statistics.
 * @throws Error with code ERR_FRAGSTAT_SMAPS where /proc/self/smaps cannot be read.
 */
export function breakdown(options?: Record<string, never>): Breakdown {
  noOptions('breakdown', options);
  const t0 = performance.now();
  const snap = snapshot();
  const smaps = readSmaps();
  const rssAfterBytes = statmRss();
  if (smaps === null) throw new SmapsUnavailable();
  const b = composeBreakdown(smaps, snap, getHeapStatistics().total_physical_size);
  return { ...b, durationMs: performance.now() - t0, rssAfterBytes };
}

/** breakdown() with the allocator read and the smaps read on libuv pool threads. */
export async function breakdownAsync(options?: Record<string, never>): Promise<Breakdown> {
  noOptions('breakdownAsync', options);
  const t0 = performance.now();
  // One after the other, in the order breakdown() reads them: RSS (with the allocator's figures)
  // and then the mappings, as close together as the pool allows.
  const snap = await snapshotAsync();
  const smaps = await readSmapsAsync();
  const rssAfterBytes = statmRss();
  if (smaps === null) throw new SmapsUnavailable();
  const b = composeBreakdown(smaps, snap, getHeapStatistics().total_physical_size);
  return { ...b, durationMs: performance.now() - t0, rssAfterBytes };
}
