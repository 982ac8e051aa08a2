// How often a monitor samples: the interval asked for, shorter in the first minutes so that a
// verdict comes sooner, stretched so that the allocator reads keep to the overhead budget; and how
// often glibc's resident free figure (an smaps read) is taken. Plain arithmetic on the costs it is
// told, with the clock passed in.

/**
 * Why the interval in effect is what it is: as asked ('requested'), shortened in the first five
 * minutes ('early'), or stretched so that sampling keeps to maxOverhead ('overhead').
 */
export type IntervalReason = 'requested' | 'early' | 'overhead';

/** What the monitor says of its own cost. */
export interface Budget {
  maxOverhead: number;
  /** The interval asked for, ms. */
  intervalMs: number;
  /**
   * The interval in effect, ms: max(intervalMs, mean cost of the last 20 samples / maxOverhead),
   * at most 5 s in the first five minutes where that keeps to maxOverhead.
   */
  effectiveIntervalMs: number;
  /** Why effectiveIntervalMs is what it is. */
  intervalReason: IntervalReason;
  /** Duration of the last sample's allocator read, ms. */
  lastSampleMs: number | null;
  /** Time spent sampling / wall time since start (a share, e.g. 0.0004). */
  overhead: number;
}

// For the first EARLY_MS the monitor samples at most EARLY_INTERVAL_MS apart (within the budget).
const EARLY_MS = 5 * 60_000;
const EARLY_INTERVAL_MS = 5000;
// glibc's resident free figure (an smaps read, about 3 ms) at most this often, and less often
// where the read costs more than half of maxOverhead over this period.
const RESIDENT_EVERY_MS = 10_000;
// ... and at least this often, whatever a read cost (the verdict judges memory held free by it).
const RESIDENT_MAX_EVERY_MS = 60_000;
// The recent sample costs whose mean sets the budget.
const COSTS_KEPT = 20;

export class Pacing {
  /** The interval in effect, ms. */
  effectiveIntervalMs: number;
  intervalReason: IntervalReason = 'requested';
  /** The least time between two samples that keeps to maxOverhead (mean recent read / maxOverhead), ms. */
  budgetMs = 0;
  private startedAt = 0;
  private sampleMsTotal = 0;
  private readonly recentCosts: number[] = [];
  // glibc's resident free figure needs an smaps read: at most this often (RESIDENT_EVERY_MS).
  private residentAt = 0;
  private residentEveryMs = RESIDENT_EVERY_MS;

  constructor(
    readonly intervalMs: number,
    readonly maxOverhead: number,
  ) {
    this.effectiveIntervalMs = intervalMs;
  }

  /** A new run from `now`: the overhead share restarts, the first resident read is RESIDENT_EVERY_MS away. */
  start(now: number): void {
    this.startedAt = now;
    this.sampleMsTotal = 0;
    this.residentAt = now;
    this.residentEveryMs = RESIDENT_EVERY_MS;
  }

  /** Whether the sample starting at `now` should read the resident free figure (and, if so, notes it). */
  residentDue(now: number): boolean {
    if (now - this.residentAt < this.residentEveryMs) return false;
    this.residentAt = now;
    return true;
  }

  /**
   * Counts a sample's cost. The periodic glibc smaps read (`periodicResident`) keeps to half the
   * budget on its own period and leaves the interval to the allocator reads.
   */
  account(costMs: number, periodicResident: boolean, now: number): void {
    this.sampleMsTotal += costMs;
    if (periodicResident) {
      // Its cost is wall time, pool queue included: a busy pool must not stop the figure for good.
      this.residentEveryMs = Math.min(
        RESIDENT_MAX_EVERY_MS,
        Math.max(RESIDENT_EVERY_MS, Math.ceil(costMs / (this.maxOverhead / 2))),
      );
      return;
    }
    this.recentCosts.push(costMs);
    if (this.recentCosts.length > COSTS_KEPT) this.recentCosts.shift();
    // The mean, not the slowest: the budget is a share of wall time, and one slow read (a GC, a
    // pool queue, the periodic smaps read) must not stretch the interval thirtyfold for minutes.
    const mean = this.recentCosts.reduce((a, b) => a + b, 0) / this.recentCosts.length;
    this.budgetMs = Math.ceil(mean / this.maxOverhead);
    const early = now - this.startedAt < EARLY_MS ? Math.min(this.intervalMs, EARLY_INTERVAL_MS) : null;
    const wanted = early ?? this.intervalMs;
    // setTimeout treats anything above 2^31-1 ms as 1 ms: never ask for more.
    this.effectiveIntervalMs = Math.min(2 ** 31 - 1, Math.max(wanted, this.budgetMs));
    this.intervalReason =
      this.budgetMs > wanted ? 'overhead' : early !== null && early < this.intervalMs ? 'early' : 'requested';
  }

  /** The budget as monitor.budget() gives it; `now` null when the monitor is not running. */
  budget(now: number | null): Budget {
    const elapsed = now === null ? 0 : now - this.startedAt;
    return {
      maxOverhead: this.maxOverhead,
      intervalMs: this.intervalMs,
      effectiveIntervalMs: this.effectiveIntervalMs,
      intervalReason: this.intervalReason,
      lastSampleMs: this.recentCosts.length ? this.recentCosts[this.recentCosts.length - 1] : null,
      overhead: elapsed > 0 ? this.sampleMsTotal / elapsed : 0,
    };
  }
}
