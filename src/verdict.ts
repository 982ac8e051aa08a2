// Is RSS growing, and if so, because of the JS heap, native live memory, or memory the allocator
// holds free? Plain arithmetic over a series of readings: no I/O, no native code.
import { checkKeys, checkNumber, checkOptions, describe } from './validate';

/** One reading in the series a verdict is drawn from (a monitor Sample or a Breakdown both fit). */
export interface VerdictPoint {
  /** ms since the Unix epoch. */
  timestamp: number;
  rssBytes: number | null;
  /** Live malloc bytes (Snapshot.allocatedBytes). */
  allocatedBytes?: number | null;
  /** V8's heap (v8.getHeapStatistics().total_physical_size); a monitor Sample carries it. */
  v8HeapBytes?: number | null;
  /** Free memory the allocator holds in RAM, where known. */
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

/** The figures behind a verdict. Rates are bytes per hour, from a least-squares line over the window. */
export interface VerdictEvidence {
  samples: number;
  windowMs: number;
  /** RSS at the start and end of the fitted line, and the growth between them. */
  rssStartBytes: number;
  rssGrowthBytes: number;
  /** rssGrowthBytes / rssStartBytes. */
  rssGrowthRatio: number;
  rssBytesPerHour: number;
  /** R^2 of the RSS line: 1 when RSS grows steadily, near 0 when it only wanders. */
  rssR2: number;
  /** Growth of each component over the window (null where the series lacks it). */
  v8GrowthBytes: number | null;
  liveGrowthBytes: number | null;
  /** RSS growth not explained by V8 or live malloc bytes: free memory held, or other native memory. */
  unexplainedGrowthBytes: number | null;
  residentFreeGrowthBytes: number | null;
  /** Each component's share of the RSS growth. */
  v8Share: number | null;
  liveShare: number | null;
  unexplainedShare: number | null;
}

export interface Verdict {
  kind: VerdictKind;
  /** One line. */
  title: string;
  /** What to do next. */
  advice: string;
  evidence: VerdictEvidence | null;
}

export interface VerdictOptions {
  /** Fewest readings that can support a verdict. Default 30. At least 2. */
  minSamples?: number;
  /** RSS must grow by at least this share of where it started to count as growth. Default 0.1. */
  minGrowthRatio?: number;
  /** ... and by at least this many bytes (ratios on small processes mislead). Default 16 MiB. */
  minGrowthBytes?: number;
  /** RSS's line must fit at least this well (R^2) for the growth to count as sustained. Default 0.5. */
  minR2?: number;
  /** The command that reruns the process under jemalloc, for the fragmentation advice. */
  jemallocCommand?: string;
}

const MiB = 1024 * 1024;
const HOUR = 3_600_000;

export const verdictDefaults = {
  minSamples: 30,
  minGrowthRatio: 0.1,
  minGrowthBytes: 16 * MiB,
  minR2: 0.5,
} as const;

interface Line {
  slope: number; // bytes per ms
  intercept: number;
  r2: number;
}

/** Least-squares line through (x, y); x relative to its first value to keep the sums exact. */
function fit(xs: number[], ys: number[]): Line {
  const n = xs.length;
  const x0 = xs[0];
  let sx = 0;
  let sy = 0;
  for (let i = 0; i < n; i++) {
    sx += xs[i] - x0;
    sy += ys[i];
  }
  const mx = sx / n;
  const my = sy / n;
  let sxx = 0;
  let sxy = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = xs[i] - x0 - mx;
    const dy = ys[i] - my;
    sxx += dx * dx;
    sxy += dx * dy;
    syy += dy * dy;
  }
  const slope = sxx > 0 ? sxy / sxx : 0;
  const r2 = sxx > 0 && syy > 0 ? (sxy * sxy) / (sxx * syy) : 0;
  return { slope, intercept: my - slope * mx, r2 };
}

function series(
  points: VerdictPoint[],
  pick: (p: VerdictPoint) => number | null | undefined,
): number[] | null {
  const out: number[] = [];
  for (const p of points) {
    const v = pick(p);
    if (typeof v !== 'number' || !Number.isFinite(v)) return null;
    out.push(v);
  }
  return out;
}

const v8Of = (p: VerdictPoint) => p.v8HeapBytes ?? p.parts?.v8Heap;
const liveOf = (p: VerdictPoint) => p.allocatedBytes ?? p.parts?.mallocLive;
const freeOf = (p: VerdictPoint) => p.residentFreeBytes ?? p.parts?.mallocFreeResident;

const fmt = (b: number) => `${(b / MiB).toFixed(1)} MiB`;
const rate = (bPerHour: number) => `${(bPerHour / MiB).toFixed(1)} MiB/h`;

function readOptions(
  options: unknown,
): Required<Omit<VerdictOptions, 'jemallocCommand'>> & { jemallocCommand: string | null } {
  const o = checkOptions('verdict(points, options)', options);
  checkKeys('verdict(points, options)', o, [
    'minSamples',
    'minGrowthRatio',
    'minGrowthBytes',
    'minR2',
    'jemallocCommand',
  ]);
  const cmd = o.jemallocCommand;
  if (cmd !== undefined && typeof cmd !== 'string') {
    throw new TypeError(`Expected a string for options.jemallocCommand but received ${describe(cmd)}`);
  }
  return {
    minSamples: checkNumber('options.minSamples', o.minSamples, verdictDefaults.minSamples, 2, 1e9, true),
    minGrowthRatio: checkNumber(
      'options.minGrowthRatio',
      o.minGrowthRatio,
      verdictDefaults.minGrowthRatio,
      0,
      1e6,
    ),
    minGrowthBytes: checkNumber(
      'options.minGrowthBytes',
      o.minGrowthBytes,
      verdictDefaults.minGrowthBytes,
      0,
      Number.MAX_SAFE_INTEGER,
    ),
    minR2: checkNumber('options.minR2', o.minR2, verdictDefaults.minR2, 0, 1),
    jemallocCommand: cmd ?? null,
  };
}

/**
 * Classifies the growth of RSS over a series of readings, oldest first (a monitor's history, or
 * Breakdowns taken over time): 'js-heap-growth' when V8's heap explains most of it, 'native-growth'
 * when live malloc bytes do, 'fragmentation' when neither does (memory held free, or other native
 * memory), 'stable' when RSS did not grow by minGrowthRatio and minGrowthBytes, and
 * 'insufficient-evidence' for fewer than minSamples readings, readings without the needed
 * figures, or growth that does not fit a line (R^2 below minR2).
 */
export function verdict(points: readonly VerdictPoint[], options?: VerdictOptions): Verdict {
  if (!Array.isArray(points)) {
    throw new TypeError(`Expected an array of readings for verdict(points) but received ${describe(points)}`);
  }
  const o = readOptions(options);
  const insufficient = (why: string, evidence: VerdictEvidence | null = null): Verdict => ({
    kind: 'insufficient-evidence',
    title: `Not enough evidence for a verdict: ${why}`,
    advice: `Keep sampling: a verdict needs at least ${o.minSamples} readings over which RSS moves steadily.`,
    evidence,
  });
  for (const p of points) {
    if (p === null || typeof p !== 'object' || typeof p.timestamp !== 'number') {
      throw new TypeError(
        `Expected readings with a numeric timestamp in verdict(points) but received ${describe(p)}`,
      );
    }
  }
  if (points.length < o.minSamples) return insufficient(`${points.length} of ${o.minSamples} readings`);
  const xs = points.map((p) => p.timestamp);
  const rss = series(points, (p) => p.rssBytes);
  if (rss === null) return insufficient('RSS is missing from some readings');
  const windowMs = xs[xs.length - 1] - xs[0];
  if (!(windowMs > 0)) return insufficient('the readings span no time');

  const rssLine = fit(xs, rss);
  const growthOf = (ys: number[] | null): number | null =>
    ys === null ? null : fit(xs, ys).slope * windowMs;
  const rssStart = rssLine.intercept;
  const rssGrowth = rssLine.slope * windowMs;
  const v8Growth = growthOf(series(points, v8Of));
  const liveGrowth = growthOf(series(points, liveOf));
  const freeGrowth = growthOf(series(points, freeOf));
  const unexplained = v8Growth !== null && liveGrowth !== null ? rssGrowth - v8Growth - liveGrowth : null;
  const share = (g: number | null) => (g === null || rssGrowth <= 0 ? null : g / rssGrowth);
  const evidence: VerdictEvidence = {
    samples: points.length,
    windowMs,
    rssStartBytes: rssStart,
    rssGrowthBytes: rssGrowth,
    rssGrowthRatio: rssStart > 0 ? rssGrowth / rssStart : 0,
    rssBytesPerHour: rssLine.slope * HOUR,
    rssR2: rssLine.r2,
    v8GrowthBytes: v8Growth,
    liveGrowthBytes: liveGrowth,
    unexplainedGrowthBytes: unexplained,
    residentFreeGrowthBytes: freeGrowth,
    v8Share: share(v8Growth),
    liveShare: share(liveGrowth),
    unexplainedShare: share(unexplained),
  };

  const growing = rssGrowth >= o.minGrowthBytes && evidence.rssGrowthRatio >= o.minGrowthRatio;
  if (!growing) {
    return {
      kind: 'stable',
      title: `RSS is stable: ${rssGrowth >= 0 ? '+' : ''}${fmt(rssGrowth)} over ${(windowMs / 60_000).toFixed(1)} min`,
      advice: 'Nothing to chase: RSS did not grow beyond the thresholds over this window.',
      evidence,
    };
  }
  if (rssLine.r2 < o.minR2) {
    return insufficient(
      `RSS grew by ${fmt(rssGrowth)} but not steadily (R^2 ${rssLine.r2.toFixed(2)})`,
      evidence,
    );
  }
  if (v8Growth === null || liveGrowth === null) {
    return insufficient('V8 heap or live malloc bytes are missing from some readings', evidence);
  }
  const perHour = (g: number) => rate((g / windowMs) * HOUR);
  const dominant = Math.max(v8Growth, liveGrowth, unexplained!);
  if (dominant === v8Growth) {
    return {
      kind: 'js-heap-growth',
      title: `JS heap growth: V8's heap grew ${perHour(v8Growth)} of RSS's ${perHour(rssGrowth)}`,
      advice:
        'A JavaScript leak or an unbounded cache: take two heap snapshots minutes apart ' +
        "(require('v8').writeHeapSnapshot(), or node --heapsnapshot-signal=SIGUSR2) and compare them in " +
        'Chrome DevTools (Memory > Comparison) to see which objects accumulate.',
      evidence,
    };
  }
  if (dominant === liveGrowth) {
    return {
      kind: 'native-growth',
      title: `Native growth: live malloc bytes grew ${perHour(liveGrowth)} of RSS's ${perHour(rssGrowth)}`,
      advice:
        'Memory allocated through malloc and still in use keeps growing: Buffers or native objects that are ' +
        'kept (a Map of Buffers, unclosed zlib or TLS streams, an addon). Find who allocates it with a ' +
        'native heap profile (jemalloc with prof:true), and look for JS objects that hold the Buffers.',
      evidence,
    };
  }
  const cure = o.jemallocCommand
    ? `or run under jemalloc with its background thread: ${o.jemallocCommand}`
    : 'or run under jemalloc with MALLOC_CONF=background_thread:true';
  return {
    kind: 'fragmentation',
    title:
      `Fragmentation: RSS grew ${perHour(rssGrowth)} while live malloc bytes grew ${perHour(liveGrowth)} ` +
      `and V8's heap ${perHour(v8Growth)}`,
    advice:
      'The allocator keeps memory that was freed (or other native memory grows outside malloc). ' +
      'Release it with fragstat.trim() or monitor({ autoTrim: true }), cap glibc arenas with ' +
      `MALLOC_ARENA_MAX=2, ${cure}.`,
    evidence,
  };
}
