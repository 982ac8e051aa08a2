// The doctor's rules: each looks at one reading (and what the doctor was told about the process)
// and returns the findings it makes, with the figures behind them and what to do. Thresholds are
// in doctorThresholds; doctor() (doctor.ts) gathers the reading and runs them.
import { allocator } from '../read/core';
import { formatBytes } from '../base/format';
import { jemallocCommand } from '../read/libraries';
import type { Tunable, Tunables } from '../cure/tunables';
import type { Snapshot } from '../base/types';

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

/** What every rule reads. */
export interface DoctorContext {
  snapshot: Snapshot;
  /** V8's physical heap size, bytes. */
  v8HeapBytes: number;
  /** The highest RSS a monitor saw, bytes, when the doctor was given it. */
  peakRssBytes: number | null;
  /** Anonymous resident memory, bytes, or null when unknown. */
  anonymousRssBytes: number | null;
  /** The allocator settings in effect, read on first use (a few hundred microseconds). */
  settings(): Tunables['settings'];
}

/** no-allocator-stats: nothing but RSS is known. */
function noAllocatorStats(c: DoctorContext): Finding[] {
  const findings: Finding[] = [];
  const s = c.snapshot;
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
  return findings;
}

/** mallinfo-may-wrap: glibc before 2.33 counts in 32 bits. */
function mallinfoMayWrap(c: DoctorContext): Finding[] {
  const findings: Finding[] = [];
  const s = c.snapshot;
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
  return findings;
}

/** glibc-arenas: many arenas, much of them free. */
function glibcArenas(c: DoctorContext): Finding[] {
  const findings: Finding[] = [];
  const s = c.snapshot;
  const free = s.freeBytes;
  const frag = s.ratios.fragmentation;
  const a = doctorThresholds.arenas;
  if (s.allocator === 'glibc' && s.arenas !== null && free !== null && frag !== null) {
    if (s.arenas >= a.minArenas && frag >= a.fragmentation && free >= a.freeBytes) {
      findings.push({
        id: 'glibc-arenas',
        severity: 'warn',
        title: `glibc spreads the heap over ${s.arenas} arenas and ${pct(frag)} of it (${formatBytes(free)}) is free`,
        advice: arenaAdvice(c.settings()['glibc.malloc.arena_max']),
        numbers: { arenas: s.arenas, freeBytes: free, fragmentation: frag, heapBytes: s.heapBytes ?? 0 },
      });
    }
  }
  return findings;
}

/** trimmable-free-memory: free memory (in RAM where known) a trim would return. */
function trimmableFreeMemory(c: DoctorContext): Finding[] {
  const findings: Finding[] = [];
  const s = c.snapshot;
  const free = s.freeBytes;
  const frag = s.ratios.fragmentation;
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
            ? 'fragstat.trim() purges what jemalloc can release now. ' + backgroundThreadAdvice(c.settings())
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
  return findings;
}

/** rss-above-allocated: resident memory outside V8 well above what malloc has live. */
function rssAboveAllocated(c: DoctorContext): Finding[] {
  const findings: Finding[] = [];
  const s = c.snapshot;
  const r = doctorThresholds.rss;
  // Anonymous memory where known: the node binary and shared libraries (often 40+ MiB, more with
  // native libraries such as libvips) are resident but no allocator's doing.
  const base = c.anonymousRssBytes ?? s.rssBytes;
  if (base !== null && s.allocatedBytes !== null && s.allocatedBytes > 0) {
    const outside = base - c.v8HeapBytes;
    const ratio = outside / s.allocatedBytes;
    const excess = outside - s.allocatedBytes;
    if (ratio >= r.warn.ratio && excess >= r.warn.excessBytes) {
      const critical = ratio >= r.critical.ratio && excess >= r.critical.excessBytes;
      findings.push({
        id: 'rss-above-allocated',
        severity: critical ? 'critical' : 'warn',
        title: `${c.anonymousRssBytes === null ? 'RSS' : 'Anonymous RSS'} outside the V8 heap is ${ratio.toFixed(2)}x the bytes malloc has live (${formatBytes(excess)} more)`,
        advice:
          'Memory is resident that neither V8 nor live native allocations account for: usually free allocator ' +
          'memory not yet returned (trim() tests that), or memory outside malloc (mmap by an addon, thread stacks).',
        numbers: {
          rssBytes: s.rssBytes ?? 0,
          ...(c.anonymousRssBytes === null ? {} : { anonymousRssBytes: c.anonymousRssBytes }),
          v8HeapBytes: c.v8HeapBytes,
          allocatedBytes: s.allocatedBytes,
          ratio,
          excessBytes: excess,
        },
      });
    }
  }
  return findings;
}

/** peak-above-current: a burst raised the footprint well above where it is now. */
function peakAboveCurrent(c: DoctorContext): Finding[] {
  const findings: Finding[] = [];
  const s = c.snapshot;
  const p = doctorThresholds.peak;
  const peaks: [string, number | null, number | null][] = [];
  if (c.peakRssBytes !== null) peaks.push(['rssBytes', c.peakRssBytes, s.rssBytes]);
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
  return findings;
}

/** Every rule, in the order their findings are listed within one severity. */
export const rules: ((c: DoctorContext) => Finding[])[] = [
  noAllocatorStats,
  mallinfoMayWrap,
  glibcArenas,
  trimmableFreeMemory,
  rssAboveAllocated,
  peakAboveCurrent,
];

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
