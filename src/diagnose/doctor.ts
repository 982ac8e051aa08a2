// Findings a person can act on, from a snapshot (and, optionally, a monitor's history).
import { getHeapStatistics } from 'node:v8';
import { allocator, snapshot } from '../read/core';
import { formatBytes } from '../base/format';
import { jemallocCommand } from '../read/libraries';
import { readAnonymousRss } from '../read/smaps';
import { tunables, type Tunable, type Tunables } from '../cure/tunables';

export { jemallocCommand };
import type { Snapshot } from '../base/types';
import { checkKeys, checkNumber, checkOptions, checkSnapshot, describe } from '../base/validate';

export type Severity = 'info' | 'warn' | 'critical';

/** One thing the doctor noticed. */
export interface Finding {
  /** Stable identifier of the rule (see the README's list). */
  id:
    | 'glibc-arenas'
    | 'trimmable-free-memory'
    | 'rss-above-allocated'
    | 'peak-above-current'
    | 'mallinfo-may-wrap'
    | 'no-allocator-stats';
  severity: Severity;
  /** One line. */
  title: string;
  /** What to do about it. */
  advice: string;
  /** The figures behind the finding, bytes and ratios. */
  numbers: Record<string, number>;
}

/** What the doctor reads of a monitor's stats (monitor.stats() gives it). */
export interface DoctorStats {
  /** Highest RSS the monitor has seen, bytes. */
  peakRssBytes: number | null;
}

export interface DoctorOptions {
  /** Peaks from a running monitor (monitor.stats()), for the peak rule. */
  stats?: DoctorStats;
  /**
   * V8's physical heap size, bytes, subtracted from RSS before comparing it with malloc's live
   * bytes (JS objects live in V8's own pages, not in malloc). Default: v8.getHeapStatistics().
   */
  v8HeapBytes?: number;
  /**
   * The process's anonymous resident memory, bytes (RssAnon of /proc/<pid>/status), which
   * rss-above-allocated compares with malloc's live bytes: code and mapped files are resident
   * too, but no allocator holds them. Default: this process's own, read now, when the doctor takes
   * its snapshot itself; else unknown (null), and RSS is used instead. Pass
   * fragstat.anonymousRssBytes() with a snapshot of this process taken just before.
   */
  anonymousRssBytes?: number | null;
}

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** Thresholds of every rule: each needs a ratio AND a byte floor, since ratios mislead on small heaps. */
export const doctorThresholds = {
  /** glibc-arenas: at least this many arenas, fragmentation and free bytes above these. */
  arenas: { minArenas: 4, fragmentation: 0.3, freeBytes: 128 * MiB },
  /** trimmable-free-memory: warn / critical levels of free bytes and fragmentation. */
  trimmable: {
    warn: { freeBytes: 64 * MiB, fragmentation: 0.25 },
    critical: { freeBytes: 512 * MiB, fragmentation: 0.5 },
  },
  /** rss-above-allocated: (anonymous RSS - V8 heap) / malloc live bytes, and the excess in bytes. */
  rss: { warn: { ratio: 1.5, excessBytes: 128 * MiB }, critical: { ratio: 3, excessBytes: 1 * GiB } },
  /** peak-above-current: the peak over the current level, and the difference in bytes. */
  peak: { ratio: 2, bytes: 256 * MiB },
} as const;

const pct = (r: number) => `${(r * 100).toFixed(0)}%`;

/** options.stats: undefined, or an object whose peakRssBytes is a number or null (monitor.stats()). */
function checkStats(value: unknown): DoctorStats | undefined {
  if (value === undefined) return undefined;
  const peak = (value as { peakRssBytes?: unknown } | null)?.peakRssBytes;
  if (
    value === null ||
    typeof value !== 'object' ||
    !(peak === null || (typeof peak === 'number' && peak >= 0))
  ) {
    throw new TypeError(
      `Expected monitor.stats() (an object with peakRssBytes, a number of bytes or null) for options.stats but received ${describe(value)}` +
        (value !== null && typeof value === 'object' ? ` with peakRssBytes ${describe(peak)}` : ''),
    );
  }
  return value as DoctorStats;
}

/**
 * Looks at a snapshot (a fresh one with `detail: true` when none is given) and returns findings,
 * worst first. An empty array means nothing worth acting on.
 */
export function doctor(snap?: Snapshot, options?: DoctorOptions): Finding[] {
  if (snap !== undefined) checkSnapshot('doctor(snapshot)', snap);
  const o = checkOptions('doctor(snapshot, options)', options);
  checkKeys('doctor(snapshot, options)', o, ['stats', 'v8HeapBytes', 'anonymousRssBytes']);
  const v8Heap = checkNumber(
    'options.v8HeapBytes',
    o.v8HeapBytes,
    getHeapStatistics().total_physical_size,
    0,
    Number.MAX_SAFE_INTEGER,
  );
  const stats = checkStats(o.stats);
  const s = snap ?? snapshot({ detail: true });
  const anon =
    o.anonymousRssBytes === null
      ? null
      : o.anonymousRssBytes !== undefined
        ? checkNumber('options.anonymousRssBytes', o.anonymousRssBytes, 0, 0, Number.MAX_SAFE_INTEGER)
        : snap === undefined
          ? readAnonymousRss()
          : null;
  // What is set already, so that no advice asks for it again: read only when a rule that needs
  // it fires (tunables() costs a few hundred microseconds).
  let read: Tunables['settings'] | null = null;
  const settings = (): Tunables['settings'] => {
    if (read === null) {
      try {
        read = tunables().settings;
      } catch {
        read = {}; // advice without the settings in view
      }
    }
    return read;
  };
  const findings: Finding[] = [];
  const free = s.freeBytes;
  const frag = s.ratios.fragmentation;

  if (s.allocatedBytes === null && s.heapBytes === null) {
    findings.push({
      id: 'no-allocator-stats',
      severity: 'info',
      title: `No allocator statistics under ${s.allocator}: only RSS is known`,
      advice:
        'fragstat reads glibc, jemalloc, tcmalloc and mimalloc. On musl or an unknown allocator, watch rssBytes; ' +
        `to see fragmentation, run under jemalloc: ${jemallocCommand()}`,
      numbers: s.rssBytes === null ? {} : { rssBytes: s.rssBytes },
    });
  }

  if (s.mayHaveWrapped) {
    const large = (s.rssBytes ?? 0) > 2 * GiB;
    findings.push({
      id: 'mallinfo-may-wrap',
      severity: large ? 'warn' : 'info',
      title: large
        ? 'RSS is above 2 GiB and glibc is older than 2.33: the allocator figures have probably wrapped'
        : 'glibc older than 2.33: allocator figures come from mallinfo, which wraps above 4 GiB',
      advice: 'Trust rssBytes over the allocator figures; glibc 2.33 or later (mallinfo2) has no such limit.',
      numbers: s.rssBytes === null ? {} : { rssBytes: s.rssBytes },
    });
  }

  const a = doctorThresholds.arenas;
  if (s.allocator === 'glibc' && s.arenas !== null && free !== null && frag !== null) {
    if (s.arenas >= a.minArenas && frag >= a.fragmentation && free >= a.freeBytes) {
      findings.push({
        id: 'glibc-arenas',
        severity: 'warn',
        title: `glibc spreads the heap over ${s.arenas} arenas and ${pct(frag)} of it (${formatBytes(free)}) is free`,
        advice: arenaAdvice(settings()['glibc.malloc.arena_max']),
        numbers: { arenas: s.arenas, freeBytes: free, fragmentation: frag, heapBytes: s.heapBytes ?? 0 },
      });
    }
  }

  // Free memory in RAM where the allocator (or a glibc detail snapshot) can tell it: memory a
  // trim already gave back is no longer worth advising a trim for.
  const t = doctorThresholds.trimmable;
  const resident = s.residentFreeBytes !== null && s.ratios.residentFragmentation !== null;
  const tFree = resident ? s.residentFreeBytes : free;
  const tFrag = resident ? s.ratios.residentFragmentation : frag;
  if (tFree !== null && tFrag !== null && tFree >= t.warn.freeBytes && tFrag >= t.warn.fragmentation) {
    const critical = tFree >= t.critical.freeBytes && tFrag >= t.critical.fragmentation;
    const glibc = s.allocator === 'glibc';
    // glibc detail: the free tops of thread arenas, which malloc_trim does not shrink.
    const tops = glibc && s.detail ? threadArenaTops(s.detail.arenas) : null;
    findings.push({
      id: 'trimmable-free-memory',
      severity: critical ? 'critical' : 'warn',
      title: resident
        ? `The allocator keeps ${formatBytes(tFree)} of free memory in RAM (${pct(tFrag)} of what it holds there)`
        : `The allocator holds ${formatBytes(tFree)} of free memory (${pct(tFrag)} of its heap)`,
      advice:
        (glibc
          ? 'glibc keeps freed memory until asked: fragstat.trim() returns its whole free pages to the OS (how much ' +
            'depends on how scattered it is: compare rssBytes before and after). ' +
            (tops !== null && tops.bytes >= 16 * MiB
              ? `About ${formatBytes(tops.bytes)} of it is the free top of ${tops.arenas} thread arenas, which ` +
                'malloc_trim itself cannot shrink: ' +
                (allocator().trimsThreadArenaTops
                  ? "fragstat's trim() releases those pages too (threadArenaTopBytes in its result). "
                  : 'fewer arenas return it (auto-trim caps them when started at start-up; MALLOC_ARENA_MAX). ')
              : '') +
            (resident
              ? ''
              : 'Without detail, glibc counts released chunks as free even after a trim, so judge by RSS. ')
          : s.allocator === 'jemalloc'
            ? 'fragstat.trim() purges what jemalloc can release now. ' + backgroundThreadAdvice(settings())
            : 'fragstat.trim() purges what the allocator can release now. ') +
        'To do it automatically, use monitor({ autoTrim: true }).',
      numbers: {
        freeBytes: free ?? 0,
        fragmentation: frag ?? 0,
        heapBytes: s.heapBytes ?? 0,
        ...(resident ? { residentFreeBytes: tFree, residentFragmentation: tFrag } : {}),
        ...(tops !== null ? { threadArenaTopBytes: tops.bytes } : {}),
      },
    });
  }

  const r = doctorThresholds.rss;
  // Anonymous memory where known: the node binary and shared libraries (often 40+ MiB, more with
  // native libraries such as libvips) are resident but no allocator's doing.
  const base = anon ?? s.rssBytes;
  if (base !== null && s.allocatedBytes !== null && s.allocatedBytes > 0) {
    const outside = base - v8Heap;
    const ratio = outside / s.allocatedBytes;
    const excess = outside - s.allocatedBytes;
    if (ratio >= r.warn.ratio && excess >= r.warn.excessBytes) {
      const critical = ratio >= r.critical.ratio && excess >= r.critical.excessBytes;
      findings.push({
        id: 'rss-above-allocated',
        severity: critical ? 'critical' : 'warn',
        title: `${anon === null ? 'RSS' : 'Anonymous RSS'} outside the V8 heap is ${ratio.toFixed(2)}x the bytes malloc has live (${formatBytes(excess)} more)`,
        advice:
          'Memory is resident that neither V8 nor live native allocations account for: usually free allocator ' +
          'memory not yet returned (trim() tests that), or memory outside malloc (mmap by an addon, thread stacks).',
        numbers: {
          rssBytes: s.rssBytes ?? 0,
          ...(anon === null ? {} : { anonymousRssBytes: anon }),
          v8HeapBytes: v8Heap,
          allocatedBytes: s.allocatedBytes,
          ratio,
          excessBytes: excess,
        },
      });
    }
  }

  const p = doctorThresholds.peak;
  const peaks: [string, number | null, number | null][] = [];
  if (stats) peaks.push(['rssBytes', stats.peakRssBytes, s.rssBytes]);
  if (s.detail) {
    const max = s.detail.arenas.reduce((sum, x) => sum + x.maxSystemBytes, 0);
    const cur = s.detail.arenas.reduce((sum, x) => sum + x.systemBytes, 0);
    peaks.push(['arenaSystemBytes', max, cur]);
  }
  for (const [what, peak, current] of peaks) {
    if (peak === null || current === null || current <= 0) continue;
    if (peak >= p.ratio * current && peak - current >= p.bytes) {
      findings.push({
        id: 'peak-above-current',
        severity: 'info',
        title: `${what === 'rssBytes' ? 'RSS' : 'glibc arena memory'} peaked at ${formatBytes(peak)}, ${(peak / current).toFixed(1)}x what it is now`,
        advice:
          'A burst raised the footprint and it has come down since. If RSS stays near the peak while live bytes ' +
          'fell, the allocator kept the memory: see trimmable-free-memory.',
        numbers: { peakBytes: peak, currentBytes: current },
      });
      break;
    }
  }

  const rank: Record<Severity, number> = { critical: 0, warn: 1, info: 2 };
  return findings.sort((x, y) => rank[x.severity] - rank[y.severity]);
}

/** glibc-arenas: what to do, best first (docs/CURES.md has the measurements), minus what is set. */
function arenaAdvice(arenaMax: Tunable | undefined): string {
  const capped =
    arenaMax !== undefined && arenaMax.source !== 'default' && typeof arenaMax.value === 'number';
  return (
    "Each thread that allocates (libuv pool work such as zlib and crypto, a native library's own threads) " +
    'can get its own arena; free memory in one arena cannot serve another, and malloc_trim cannot shrink the ' +
    'free top of a thread arena. ' +
    (capped
      ? `The arenas are capped already (${String(arenaMax.value)}, by ${arenaMax.from}): trim when the service is quiet with ` +
        'monitor({ autoTrim: true }), or '
      : 'Start monitor({ autoTrim: true }) when the service starts: it caps new arenas at 2 x CPUs and trims when ' +
        'the service goes quiet after a burst. Or cap them yourself (MALLOC_ARENA_MAX=2), or ') +
    `run under jemalloc with its background thread, which returns free pages by itself: ${jemallocCommand()}`
  );
}

/** jemalloc: whether its background thread already returns idle pages. */
function backgroundThreadAdvice(settings: Tunables['settings']): string {
  if (settings.background_thread?.value === true) {
    const decay = settings['arenas.dirty_decay_ms']?.value;
    return (
      'Its background thread is on, so it returns these pages by itself' +
      (typeof decay === 'number' ? ` within about ${decay} ms (dirty_decay_ms) of their last use` : '') +
      ': memory that stays is in use again or held by muzzy/retained extents. '
    );
  }
  return (
    "If this memory stays while the service is idle, turn on jemalloc's background thread " +
    '(MALLOC_CONF=background_thread:true, or fragstat.tune({ backgroundThread: true }) at run time): ' +
    'without it, jemalloc returns freed pages only while it is being called. '
  );
}

/** The free tops of glibc's thread arenas (every arena but the main one, index 0), bytes. */
function threadArenaTops(arenas: { index: number; topBytes: number }[]): { bytes: number; arenas: number } {
  const thread = arenas.filter((a) => a.index !== 0);
  return { bytes: thread.reduce((sum, a) => sum + a.topBytes, 0), arenas: thread.length };
}
