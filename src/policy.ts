// When to trim automatically: the gates a monitor's auto-trim applies to each sample, and what it
// learns from each trim. Plain state and arithmetic over samples; the monitor does the I/O.
import type { Snapshot, TrimResult } from './types';
import { checkKeys, checkNumber, describe } from './validate';

/** The trim policy. A trim runs after a sample when every condition holds. */
export interface AutoTrimOptions {
  /**
   * Free memory at least this, bytes: the free memory in RAM (residentFreeBytes) where the
   * allocator can tell it, else freeBytes. Default 64 MiB.
   */
  minFreeBytes?: number;
  /** That free memory as a share of what the allocator holds (residentFragmentation, else fragmentation) at least this. Default 0.25. */
  minFragmentation?: number;
  /**
   * Since the last trim, memory that neither V8's heap nor live malloc bytes explain
   * (rssBytes - v8HeapBytes - allocatedBytes) grew by at least this, so there can be something new
   * to release. V8 is left out: its heap shrinking after a GC would otherwise close this gate for
   * good. Default: minFreeBytes / 2.
   */
  minGrowthBytes?: number;
  /** At least this long since the last trim, ms. Default 60000. */
  minIntervalMs?: number;
  /** A trim that releases less than this counts as releasing nothing. Default 1 MiB. */
  minReleasedBytes?: number;
  /** Each trim that releases nothing (or is undone) doubles the minimum interval, up to this factor. Default 32. */
  maxBackoff?: number;
  /**
   * A trim counts as undone when, by the next sample, the process took this many minor page faults
   * per page it released (it touched the released memory again): the interval backs off as for a
   * trim that released nothing. Default 0.5.
   */
  maxRefaultRatio?: number;
}

/** What the policy looks at in a sample. */
export type PolicySample = Pick<
  Snapshot,
  'rssBytes' | 'allocatedBytes' | 'freeBytes' | 'residentFreeBytes' | 'ratios'
> & { v8HeapBytes: number };

const MiB = 1024 * 1024;
const PAGE = 4096;

/** Reads options.autoTrim: null when auto-trim is off. */
export function readTrimOptions(value: unknown): Required<AutoTrimOptions> | null {
  if (value === undefined || value === false) return null;
  const o = value === true ? {} : value;
  if (o === null || typeof o !== 'object' || Array.isArray(o)) {
    throw new TypeError(`Expected a boolean or an object for options.autoTrim but received ${describe(o)}`);
  }
  checkKeys('options.autoTrim', o, [
    'minFreeBytes',
    'minFragmentation',
    'minGrowthBytes',
    'minIntervalMs',
    'minReleasedBytes',
    'maxBackoff',
    'maxRefaultRatio',
  ]);
  const t = o as AutoTrimOptions;
  const minFreeBytes = checkNumber('options.autoTrim.minFreeBytes', t.minFreeBytes, 64 * MiB, 0, Infinity);
  return {
    minFreeBytes,
    minFragmentation: checkNumber('options.autoTrim.minFragmentation', t.minFragmentation, 0.25, 0, 1),
    minGrowthBytes: checkNumber(
      'options.autoTrim.minGrowthBytes',
      t.minGrowthBytes,
      minFreeBytes / 2,
      0,
      Infinity,
    ),
    minIntervalMs: checkNumber('options.autoTrim.minIntervalMs', t.minIntervalMs, 60_000, 0, Infinity),
    minReleasedBytes: checkNumber('options.autoTrim.minReleasedBytes', t.minReleasedBytes, MiB, 0, Infinity),
    maxBackoff: checkNumber('options.autoTrim.maxBackoff', t.maxBackoff, 32, 1, 1 << 20),
    maxRefaultRatio: checkNumber('options.autoTrim.maxRefaultRatio', t.maxRefaultRatio, 0.5, 0, Infinity),
  };
}

/** RSS that neither V8's heap nor live malloc bytes explain; null where a figure is missing. */
function unexplained(s: PolicySample): number | null {
  return s.rssBytes === null || s.allocatedBytes === null
    ? null
    : s.rssBytes - s.v8HeapBytes - s.allocatedBytes;
}

/** The minor page faults this process has taken so far. */
const minorFaults = (): number => process.resourceUsage().minorPageFault;

/** One monitor's auto-trim state. */
export class TrimPolicy {
  private lastTrimAt = -Infinity;
  private baseline: number | null = null;
  private backoff = 1;
  // The last trim, until the next sample judges whether it was undone.
  private pending: { faults: number; releasedPages: number } | null = null;
  /** Trims judged undone by the page faults that followed them. */
  undone = 0;

  constructor(readonly options: Required<AutoTrimOptions>) {}

  /** The least time between two trims now, ms (grows while trims release nothing or are undone). */
  get intervalMs(): number {
    return this.options.minIntervalMs * this.backoff;
  }

  /** Whether to trim after this sample; also judges the previous trim by the faults since. */
  shouldTrim(s: PolicySample, now: number = performance.now()): boolean {
    this.judgeLastTrim();
    const p = this.options;
    const resident = s.residentFreeBytes !== null && s.ratios.residentFragmentation !== null;
    const free = resident ? s.residentFreeBytes : s.freeBytes;
    const frag = resident ? s.ratios.residentFragmentation : s.ratios.fragmentation;
    if (free === null || frag === null) return false;
    if (free < p.minFreeBytes || frag < p.minFragmentation) return false;
    if (now - this.lastTrimAt < this.intervalMs) return false;
    const u = unexplained(s);
    if (u === null) return false;
    return this.baseline === null || u - this.baseline >= p.minGrowthBytes;
  }

  /** Records a trim that ran after sample `s`. */
  trimmed(s: PolicySample, result: TrimResult, now: number = performance.now()): void {
    this.lastTrimAt = now;
    const u = unexplained(s);
    // What was left unexplained once the trim had run: the next trim waits for growth beyond it.
    this.baseline =
      result.rssAfterBytes !== null && u !== null ? u - (s.rssBytes! - result.rssAfterBytes) : u;
    const released = result.releasedBytes ?? 0;
    if (released < this.options.minReleasedBytes) {
      this.grow();
      this.pending = null;
    } else {
      this.backoff = 1;
      this.pending = { faults: minorFaults(), releasedPages: released / PAGE };
    }
  }

  private judgeLastTrim(): void {
    const t = this.pending;
    if (t === null) return;
    this.pending = null;
    if (minorFaults() - t.faults >= this.options.maxRefaultRatio * t.releasedPages) {
      this.undone++;
      this.grow();
    }
  }

  private grow(): void {
    this.backoff = Math.min(this.backoff * 2, this.options.maxBackoff);
  }
}
