// Is RSS growing, and if so, because of the JS heap, native live memory, or memory the allocator
// holds free? Plain arithmetic over a series of readings: no I/O, no native code.
//
// The verdict judges what persists, not a line through every reading. The window is cut into
// successive slices (five, each at most ten minutes) and each slice's trough is taken: the lowest
// RSS in it, and the lowest V8 heap and live malloc bytes. A leak raises every trough and is still
// raising them at the end; a cache or a warm-up raises them and then stops (a plateau); a periodic
// batch (a sawtooth) leaves them where they were; a burst that glibc does not give back raises
// them once, with free memory, not live memory, making up the difference. Memory held free is also
// judged by state: when the allocator's resident free memory is a large share of RSS at the
// latest quiet moment, that is fragmentation even when RSS is flat.
import { checkKeys, checkNumber, checkOptions, describe } from '../base/validate';

/** One reading in the series a verdict is drawn from (a monitor Sample or a Breakdown both fit). */
export interface VerdictPoint {
  /** ms since the Unix epoch. */
  timestamp: number;
  rssBytes: number | null;
  /** Live malloc bytes (Snapshot.allocatedBytes). */
  allocatedBytes?: number | null;
  /** V8's heap (v8.getHeapStatistics().total_physical_size); a monitor Sample carries it. */
  v8HeapBytes?: number | null;
  /** Free memory the allocator holds in RAM, where known (Snapshot.residentFreeBytes). */
  residentFreeBytes?: number | null;
  /** A Breakdown's parts: used when the point has no top-level figures. */
  parts?: { v8Heap: number; mallocLive: number; mallocFreeResident: number };
}

/** Every kind a verdict can have. */
export const verdictKinds = [
  'js-heap-growth',
  'native-growth',
  'fragmentation',
  'stable',
  'insufficient-evidence',
] as const;

export type VerdictKind = (typeof verdictKinds)[number];

/**
 * How firm a verdict is. 'high': more readings would not change it. 'medium': the shape is clear
 * but short, or one figure is missing. 'low': a first reading (the growth may still level off, or a
 * slow leak would not show yet); insufficient evidence is always 'low'.
 */
export type VerdictConfidence = 'low' | 'medium' | 'high';

/** Each confidence as a number that orders them (1 low, 2 medium, 3 high), as the metrics publish it. */
export const verdictConfidenceLevels: Record<VerdictConfidence, number> = { low: 1, medium: 2, high: 3 };

/**
 * The figures behind a verdict. Troughs are the lowest value in each slice of the window;
 * growth is the last slice's trough less the first's. Bytes, ms, and shares from 0 to 1.
 */
export interface VerdictEvidence {
  /** Readings used (those with an RSS figure), and readings skipped for lacking one. */
  samples: number;
  skipped: number;
  windowMs: number;
  /** Slices the window was cut into, and the length of each. */
  slices: number;
  sliceMs: number;
  /** RSS troughs: first and last slice, and the growth between them. */
  rssStartBytes: number;
  rssEndBytes: number;
  rssGrowthBytes: number;
  /** rssGrowthBytes / rssStartBytes. */
  rssGrowthRatio: number;
  /** rssGrowthBytes per hour of window (from the first slice's middle to the last's). */
  rssBytesPerHour: number;
  /** Growth of the troughs over the most recent slices (the second half of the window). */
  recentGrowthBytes: number;
  recentWindowMs: number;
  /** Share of slice-to-slice steps in which the RSS trough rose (by more than noise). */
  risingShare: number;
  /** Growth of each component's troughs over the window (null where the series lacks it). */
  v8GrowthBytes: number | null;
  liveGrowthBytes: number | null;
  /** RSS growth that V8 and live malloc bytes do not explain: free memory held, or other native memory. */
  unexplainedGrowthBytes: number | null;
  residentFreeGrowthBytes: number | null;
  /** Each component's share of the RSS growth (null when RSS did not grow). */
  v8Share: number | null;
  liveShare: number | null;
  unexplainedShare: number | null;
  /**
   * At the latest quiet moment (the lowest RSS in the last slice): RSS; and the allocator's
   * resident free memory at the quietest reading of the last two slices that has the figure.
   */
  quietRssBytes: number;
  quietResidentFreeBytes: number | null;
  /** quietResidentFreeBytes / RSS at the reading it comes from. */
  quietResidentFreeShare: number | null;
}

export interface Verdict {
  kind: VerdictKind;
  /** One line. */
  title: string;
  /** What to do next. */
  advice: string;
  confidence: VerdictConfidence;
  /** How much longer to keep sampling for a firmer verdict (or for one at all), ms; null when it is as firm as it gets. */
  waitMs: number | null;
  /** The evidence in sentences, with units. */
  because: string[];
  evidence: VerdictEvidence | null;
}

export interface VerdictOptions {
  /** Fewest readings that can support a verdict. Default 10. At least 2. */
  minSamples?: number;
  /** Shortest window that can support a verdict, ms. Default 90000 (90 s). */
  minWindowMs?: number;
  /** RSS troughs must grow by at least this share of where they started to count as growth. Default 0.1. */
  minGrowthRatio?: number;
  /** ... and by at least this many bytes (ratios on small processes mislead). Default 16 MiB. */
  minGrowthBytes?: number;
  /** Resident free memory at a quiet moment is fragmentation from this share of RSS. Default 0.25. */
  minFreeShare?: number;
  /** ... and from this many bytes. Default 32 MiB. */
  minFreeBytes?: number;
  /** The command that reruns the process under jemalloc, for the fragmentation advice. */
  jemallocCommand?: string;
}

const MiB = 1024 * 1024;
const MINUTE = 60_000;
const HOUR = 3_600_000;
// Five slices, each at most ten minutes: a sawtooth whose period is shorter than a slice leaves
// every slice's trough at the same level.
const SLICES = 5;
const MAX_SLICE_MS = 10 * MINUTE;
// A window this long, with no growth, makes 'stable' firm (medium from a third of it).
const FIRM_STABLE_MS = 15 * MINUTE;

export const verdictDefaults = {
  minSamples: 10,
  minWindowMs: 90_000,
  minGrowthRatio: 0.1,
  minGrowthBytes: 16 * MiB,
  minFreeShare: 0.25,
  minFreeBytes: 32 * MiB,
} as const;

type Pick = (p: VerdictPoint) => number | null | undefined;
const rssOf: Pick = (p) => p.rssBytes;
const v8Of: Pick = (p) => p.v8HeapBytes ?? p.parts?.v8Heap;
const liveOf: Pick = (p) => p.allocatedBytes ?? p.parts?.mallocLive;
const freeOf: Pick = (p) => p.residentFreeBytes ?? p.parts?.mallocFreeResident;
const value = (p: VerdictPoint, pick: Pick): number | null => {
  const v = pick(p);
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
};

const fmt = (b: number) => `${(b / MiB).toFixed(1)} MiB`;
const signed = (b: number) => `${b >= 0 ? '+' : ''}${fmt(b)}`;
const rate = (bPerHour: number) => `${(bPerHour / MiB).toFixed(1)} MiB/h`;
const minutes = (ms: number) =>
  ms < 2 * MINUTE ? `${Math.round(ms / 1000)} s` : `${(ms / MINUTE).toFixed(ms < 20 * MINUTE ? 1 : 0)} min`;
const pct = (share: number) => `${Math.round(share * 100)}%`;

type Options = Required<Omit<VerdictOptions, 'jemallocCommand'>> & { jemallocCommand: string | null };

function readOptions(options: unknown): Options {
  const o = checkOptions('verdict(points, options)', options);
  checkKeys('verdict(points, options)', o, [...Object.keys(verdictDefaults), 'jemallocCommand']);
  const cmd = o.jemallocCommand;
  if (cmd !== undefined && typeof cmd !== 'string') {
    throw new TypeError(`Expected a string for options.jemallocCommand but received ${describe(cmd)}`);
  }
  const d = verdictDefaults;
  const max = Number.MAX_SAFE_INTEGER;
  return {
    minSamples: checkNumber('options.minSamples', o.minSamples, d.minSamples, 2, 1e9, true),
    minWindowMs: checkNumber('options.minWindowMs', o.minWindowMs, d.minWindowMs, 0, max),
    minGrowthRatio: checkNumber('options.minGrowthRatio', o.minGrowthRatio, d.minGrowthRatio, 0, 1e6),
    minGrowthBytes: checkNumber('options.minGrowthBytes', o.minGrowthBytes, d.minGrowthBytes, 0, max),
    minFreeShare: checkNumber('options.minFreeShare', o.minFreeShare, d.minFreeShare, 0, 1),
    minFreeBytes: checkNumber('options.minFreeBytes', o.minFreeBytes, d.minFreeBytes, 0, max),
    jemallocCommand: cmd ?? null,
  };
}

/** One slice of the window: its troughs (the lowest RSS, V8 heap and live bytes in it). */
interface Slice {
  start: number;
  end: number;
  rss: number;
  v8: number | null;
  live: number | null;
  /**
   * Resident free memory at the quietest reading of the slice that has the figure (a monitor
   * reads it every 10 s under glibc), and RSS at that reading.
   */
  free: number | null;
  freeRss: number | null;
}

function slices(points: VerdictPoint[], first: number, last: number, count: number): Slice[] {
  const width = (last - first) / count;
  const out: Slice[] = [];
  let i = 0;
  for (let k = 0; k < count; k++) {
    const start = first + k * width;
    const end = k === count - 1 ? last : first + (k + 1) * width;
    const members: VerdictPoint[] = [];
    while (
      i < points.length &&
      (points[i].timestamp < end || (k === count - 1 && points[i].timestamp <= end))
    ) {
      members.push(points[i++]);
    }
    if (members.length === 0) continue;
    const lowest = (pick: Pick): number | null => {
      let m: number | null = null;
      for (const p of members) {
        const v = value(p, pick);
        if (v !== null && (m === null || v < m)) m = v;
      }
      return m;
    };
    let free: number | null = null;
    let freeRss: number | null = null;
    for (const p of members) {
      const f = value(p, freeOf);
      const r = value(p, rssOf)!;
      if (f !== null && (freeRss === null || r < freeRss)) {
        free = f;
        freeRss = r;
      }
    }
    out.push({
      start,
      end,
      rss: lowest(rssOf)!,
      v8: lowest(v8Of),
      live: lowest(liveOf),
      free,
      freeRss,
    });
  }
  return out;
}

/** The growth of one component's troughs from the first slice that has it to the last. */
function growthOf(s: Slice[], key: 'v8' | 'live' | 'free'): number | null {
  const have = s.filter((x) => x[key] !== null);
  if (have.length < 2 || have[0] !== s[0] || have[have.length - 1] !== s[s.length - 1]) return null;
  return have[have.length - 1][key]! - have[0][key]!;
}

/**
 * Says why RSS moves over a series of readings, oldest first (a monitor's history, a recording of
 * `fragstat run`, or Breakdowns taken over time), judging the troughs of successive slices of the
 * window rather than one line through every reading:
 * - 'js-heap-growth' / 'native-growth' / 'fragmentation': the troughs grew by minGrowthRatio and
 *   minGrowthBytes and are still growing in the second half of the window, mostly through V8's
 *   heap, live malloc bytes, or neither (memory held free, or other native memory);
 * - 'fragmentation' also when RSS grew and levelled off with neither V8 nor live bytes behind it,
 *   or when resident free memory is at least minFreeShare of RSS and minFreeBytes at the latest
 *   quiet moment, whatever the trend;
 * - 'stable': no growth, or growth that levelled off (a cache that filled, a warm-up, a batch
 *   that comes and goes are not leaks);
 * - 'insufficient-evidence': fewer than minSamples readings or less than minWindowMs of them.
 * Readings that lack a figure are left out of that figure's series, not fatal. Each verdict says
 * how firm it is (`confidence`), how much longer to sample for a firmer one (`waitMs`), and its
 * evidence in sentences (`because`).
 */
export function verdict(points: readonly VerdictPoint[], options?: VerdictOptions): Verdict {
  if (!Array.isArray(points)) {
    throw new TypeError(`Expected an array of readings for verdict(points) but received ${describe(points)}`);
  }
  const o = readOptions(options);
  for (const p of points) {
    if (p === null || typeof p !== 'object' || typeof p.timestamp !== 'number') {
      throw new TypeError(
        `Expected readings with a numeric timestamp in verdict(points) but received ${describe(p)}`,
      );
    }
  }
  const usable = points.filter((p) => value(p, rssOf) !== null);
  const skipped = points.length - usable.length;
  const first = usable.length ? usable[0].timestamp : 0;
  const last = usable.length ? usable[usable.length - 1].timestamp : 0;
  const windowMs = last - first;
  const step = usable.length > 1 ? windowMs / (usable.length - 1) : null;
  const insufficient = (why: string, waitMs: number | null): Verdict => ({
    kind: 'insufficient-evidence',
    title: `Not enough evidence for a verdict yet: ${why}`,
    advice:
      waitMs === null
        ? 'Keep sampling: a verdict needs readings with an RSS figure.'
        : `Keep sampling for about ${minutes(waitMs)} more.`,
    confidence: 'low',
    waitMs,
    because: [
      `${usable.length} reading${usable.length === 1 ? '' : 's'} with an RSS figure over ${minutes(Math.max(0, windowMs))}` +
        (skipped ? ` (${skipped} without one left out)` : '') +
        `; a verdict needs ${o.minSamples} readings over ${minutes(o.minWindowMs)}.`,
    ],
    evidence: null,
  });
  if (usable.length < o.minSamples || windowMs < o.minWindowMs) {
    const forSamples = step !== null && step > 0 ? (o.minSamples - usable.length) * step : null;
    const forWindow = o.minWindowMs - windowMs;
    const wait = Math.max(forWindow, forSamples ?? 0);
    const why =
      usable.length < o.minSamples
        ? `${usable.length} of ${o.minSamples} readings`
        : `${minutes(windowMs)} of ${minutes(o.minWindowMs)} sampled`;
    return insufficient(why, usable.length < 2 && forWindow <= 0 ? null : Math.max(wait, 1000));
  }

  const count = Math.max(SLICES, Math.ceil(windowMs / MAX_SLICE_MS));
  const s = slices(usable, first, last, count);
  if (s.length < 3)
    return insufficient('the readings fall in fewer than three slices of the window', windowMs);
  const sliceMs = windowMs / count;
  const a = s[0];
  const z = s[s.length - 1];
  // The resident free figure at the latest quiet moment: the quietest reading that has it in the
  // last two slices (read every 10 s, it can fall only on peaks of a slice when a batch's period
  // is near that).
  const q = s
    .slice(-2)
    .filter((x) => x.free !== null)
    .reduce<Slice | null>((m, x) => (m === null || x.freeRss! < m.freeRss! ? x : m), null) ?? {
    free: null,
    freeRss: null,
  };
  const growth = z.rss - a.rss;
  // The second half of the steps between slices.
  const recentSteps = Math.max(1, Math.floor((s.length - 1) / 2));
  const r = s[s.length - 1 - recentSteps];
  const recentGrowth = z.rss - r.rss;
  const noise = (x: number) => Math.max(2 * MiB, 0.01 * x);
  let rising = 0;
  for (let i = 1; i < s.length; i++) if (s[i].rss - s[i - 1].rss > noise(s[i - 1].rss)) rising++;
  const spanMs = (z.start + z.end) / 2 - (a.start + a.end) / 2;
  const recentMs = (z.start + z.end) / 2 - (r.start + r.end) / 2;
  const v8Growth = growthOf(s, 'v8');
  const liveGrowth = growthOf(s, 'live');
  const freeGrowth = growthOf(s, 'free');
  const unexplained = v8Growth !== null && liveGrowth !== null ? growth - v8Growth - liveGrowth : null;
  const share = (g: number | null) => (g === null || growth <= 0 ? null : g / growth);
  const evidence: VerdictEvidence = {
    samples: usable.length,
    skipped,
    windowMs,
    slices: s.length,
    sliceMs,
    rssStartBytes: a.rss,
    rssEndBytes: z.rss,
    rssGrowthBytes: growth,
    rssGrowthRatio: a.rss > 0 ? growth / a.rss : 0,
    rssBytesPerHour: spanMs > 0 ? (growth / spanMs) * HOUR : 0,
    recentGrowthBytes: recentGrowth,
    recentWindowMs: recentMs,
    risingShare: rising / (s.length - 1),
    v8GrowthBytes: v8Growth,
    liveGrowthBytes: liveGrowth,
    unexplainedGrowthBytes: unexplained,
    residentFreeGrowthBytes: freeGrowth,
    v8Share: share(v8Growth),
    liveShare: share(liveGrowth),
    unexplainedShare: share(unexplained),
    quietRssBytes: z.rss,
    quietResidentFreeBytes: q.free,
    quietResidentFreeShare: q.free !== null && q.freeRss! > 0 ? q.free / q.freeRss! : null,
  };

  const because: string[] = [
    `RSS at its quietest went from ${fmt(a.rss)} to ${fmt(z.rss)} (${signed(growth)}) over ` +
      `${minutes(windowMs)}, in ${s.length} slices of ${minutes(sliceMs)}` +
      (growth > 0 ? `; ${signed(recentGrowth)} of it in the last ${minutes(recentMs)}.` : '.'),
  ];
  const parts: string[] = [];
  if (v8Growth !== null) parts.push(`V8's heap ${signed(v8Growth)}`);
  if (liveGrowth !== null) parts.push(`live malloc bytes ${signed(liveGrowth)}`);
  if (unexplained !== null)
    parts.push(`the rest (free memory held, other native memory) ${signed(unexplained)}`);
  if (parts.length) because.push(`Over the same slices: ${parts.join(', ')}.`);
  if (q.free !== null) {
    because.push(
      `At the latest quiet moment the allocator held ${fmt(q.free)} free in RAM, ` +
        `${pct(evidence.quietResidentFreeShare!)} of RSS.`,
    );
  }
  if (skipped) because.push(`${skipped} readings without an RSS figure were left out.`);

  const threshold = Math.max(o.minGrowthBytes, o.minGrowthRatio * a.rss);
  const grew = growth >= threshold;
  // Still growing: the recent steps rise at no less than 40% of the window's average pace ...
  const recentPace = recentGrowth / recentSteps;
  const pace = growth / (s.length - 1);
  // ... and the last step still rises at a quarter of that pace or more (a cache that has just
  // filled stops here, a slice after it stops, rather than half a window later).
  const lastStep = z.rss - s[s.length - 2].rss;
  const growing = grew && recentGrowth > noise(r.rss) && recentPace >= 0.4 * pace && lastStep >= 0.25 * pace;
  const heldFree =
    q.free !== null && q.free >= o.minFreeBytes && q.free >= o.minFreeShare * Math.max(1, q.freeRss!);
  const cure = o.jemallocCommand
    ? `or run under jemalloc with its background thread: ${o.jemallocCommand}`
    : 'or run under jemalloc with MALLOC_CONF=background_thread:true';
  const fragmentationAdvice =
    'The allocator keeps memory that was freed. Release it with fragstat.trim() or ' +
    'monitor({ autoTrim: true }) (fragstat run --auto-trim), cap glibc arenas with ' +
    `MALLOC_ARENA_MAX=2, ${cure}.`;
  const stableFor = windowMs >= FIRM_STABLE_MS ? 'high' : windowMs >= FIRM_STABLE_MS / 3 ? 'medium' : 'low';
  const stableWait =
    stableFor === 'high' ? null : (stableFor === 'low' ? FIRM_STABLE_MS / 3 : FIRM_STABLE_MS) - windowMs;
  // The slowest leak this window could have missed: growth just under the threshold.
  const slowest = rate((threshold / Math.max(1, spanMs)) * HOUR);

  if (growing) {
    const perHour = (g: number) => rate((g / spanMs) * HOUR);
    const steady = rising / (s.length - 1);
    const slowing = recentPace < 0.7 * pace;
    const confidence: VerdictConfidence = slowing
      ? 'low'
      : steady >= 0.75 && growth >= 2 * threshold
        ? 'high'
        : 'medium';
    const waitMs = confidence === 'high' ? null : 2 * sliceMs;
    if (slowing) because.push('The growth is slowing: it may still level off (a cache filling up).');
    if (v8Growth === null && liveGrowth === null) {
      return {
        kind: 'insufficient-evidence',
        title: `RSS grows ${perHour(growth)}, but the readings have neither V8's heap nor live malloc bytes`,
        advice:
          'Sample with fragstat (monitor(), fragstat run) so that each reading carries both, or see ' +
          'the breakdown (fragstat.breakdown()) for where the memory is.',
        confidence: 'low',
        waitMs: null,
        because,
        evidence,
      };
    }
    const v8 = v8Growth ?? -Infinity;
    const live = liveGrowth ?? -Infinity;
    const rest = unexplained ?? -Infinity;
    const dominant = Math.max(v8, live, rest);
    const partial: VerdictConfidence = confidence === 'high' && unexplained === null ? 'medium' : confidence;
    if (dominant === v8) {
      return {
        kind: 'js-heap-growth',
        title: `JS heap growth: V8's heap grows ${perHour(v8)} of RSS's ${perHour(growth)}`,
        advice:
          'A JavaScript leak or an unbounded cache: take two heap snapshots minutes apart ' +
          "(require('v8').writeHeapSnapshot(), or node --heapsnapshot-signal=SIGUSR2) and compare them in " +
          'Chrome DevTools (Memory > Comparison) to see which objects accumulate.',
        confidence: partial,
        waitMs: partial === 'high' ? null : waitMs,
        because,
        evidence,
      };
    }
    if (dominant === live) {
      return {
        kind: 'native-growth',
        title: `Native growth: live malloc bytes grow ${perHour(live)} of RSS's ${perHour(growth)}`,
        advice:
          'Memory allocated through malloc and still in use keeps growing: Buffers or native objects that are ' +
          'kept (a Map of Buffers, unclosed zlib or TLS streams, an addon). Name the JS objects that hold ' +
          'them and what grew: fragstat attach <pid> --watch 5m --holders (or fragstat.holders() in the ' +
          'process); or find who allocates it with a native heap profile (fragstat run --profile, under jemalloc).',
        confidence: partial,
        waitMs: partial === 'high' ? null : waitMs,
        because,
        evidence,
      };
    }
    return {
      kind: 'fragmentation',
      title:
        `Fragmentation: RSS grows ${perHour(growth)} while live malloc bytes grow ${perHour(live)} ` +
        `and V8's heap ${perHour(v8)}`,
      advice: fragmentationAdvice,
      confidence: partial,
      waitMs: partial === 'high' ? null : waitMs,
      because,
      evidence,
    };
  }

  // Not growing now. What does RSS hold at its quietest?
  const levelled = grew;
  if (levelled) {
    because.push(
      `It levelled off: ${signed(recentGrowth)} in the last ${minutes(recentMs)}, ` +
        `against ${signed(growth)} over the window.`,
    );
  }
  // Growth that levelled off, mostly outside V8 and live malloc bytes, and (where the figure is
  // known) mostly memory the allocator holds free: what glibc kept from a burst or a batch.
  const restMostly =
    levelled &&
    unexplained !== null &&
    unexplained >= 0.5 * growth &&
    (q.free === null || heldFree || q.free >= 0.5 * unexplained);
  if (heldFree || restMostly) {
    const title = heldFree
      ? `Fragmentation: ${fmt(q.free!)} of RSS (${pct(evidence.quietResidentFreeShare!)}) is free memory the allocator keeps, at the quietest moment`
      : `Fragmentation: RSS rose ${fmt(growth)} and stays there, while V8's heap and live malloc bytes did not`;
    return {
      kind: 'fragmentation',
      title,
      advice: fragmentationAdvice,
      confidence: heldFree ? (q.free! >= 2 * o.minFreeBytes ? 'high' : 'medium') : 'medium',
      waitMs: heldFree ? null : 2 * sliceMs,
      because,
      evidence,
    };
  }
  if (levelled) {
    return {
      kind: 'stable',
      title: `RSS rose ${fmt(growth)} and levelled off at ${fmt(z.rss)}: a cache or a warm-up that reached its size, not a leak`,
      advice:
        'Nothing to chase unless the level itself is too high: then look at what fills it (the breakdown ' +
        'says which part grew). If it starts rising again, the verdict will say so.',
      confidence: recentSteps >= 2 ? 'medium' : 'low',
      waitMs: 2 * sliceMs,
      because,
      evidence,
    };
  }
  because.push(`A leak slower than about ${slowest} would not show in this window yet.`);
  return {
    kind: 'stable',
    title: `RSS is stable: ${signed(growth)} at its quietest over ${minutes(windowMs)}`,
    advice:
      'Nothing to chase: RSS did not grow beyond the thresholds over this window.' +
      (stableWait !== null ? ` Sampling ${minutes(stableWait)} longer would rule out slower growth.` : ''),
    confidence: stableFor,
    waitMs: stableWait,
    because,
    evidence,
  };
}
