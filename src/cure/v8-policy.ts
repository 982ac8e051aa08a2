// When a quiet moment should also ask V8 for its idle heap (releaseV8Heap): the heap must have
// grown since the last release by enough to matter, and the pause V8 is predicted to take must fit
// the bound. Plain state and arithmetic; the monitor's auto-trim does the call.
import type { V8ReleaseResult } from './v8heap';

const MiB = 1024 * 1024;

/**
 * The pause a release is predicted to take per MiB of V8's heap in RAM before it, ms, until this
 * process has measured its own: bench/v8-release.mjs measured medians of 0.48-0.70 ms per MiB
 * (the worst round 1.08) for memory-pressure releases of 120-940 MiB heaps on 2 shared vCPUs
 * (docs/CURES.md).
 */
export const PRIOR_PAUSE_MS_PER_MIB = 0.75;

/** What the V8 release gates look at. */
export interface V8HeapReading {
  /** V8's heap in RAM (total_physical_size), bytes. */
  heapBytes: number;
}

/** One monitor's V8 release state. */
export class V8ReleasePolicy {
  /** V8's heap in RAM after the last release (at first: when the monitor started), bytes. */
  private baselineBytes: number;
  /** ms of pause per MiB of heap, as last measured (at first, the prior). */
  private msPerMiB = PRIOR_PAUSE_MS_PER_MIB;
  /** Releases run. */
  releases = 0;
  /** V8 pages they gave back, bytes (the sum of positive releasedBytes). */
  releasedBytes = 0;
  /** The longest pause one took, ms. */
  longestPauseMs = 0;
  /** Releases not run because the predicted pause was over the bound. */
  heldPause = 0;

  constructor(
    /** The longest pause a release may be predicted to take, ms. */
    readonly maxPauseMs: number,
    start: V8HeapReading,
  ) {
    this.baselineBytes = start.heapBytes;
  }

  /** The pause a release of this heap is predicted to take, ms. */
  predictPauseMs(r: V8HeapReading): number {
    return (this.msPerMiB * r.heapBytes) / MiB;
  }

  /**
   * Whether to release now, at a quiet moment: V8's heap grew by at least `minGrowthBytes` since
   * the last release, and the predicted pause is within the bound.
   */
  shouldRelease(r: V8HeapReading, minGrowthBytes: number): boolean {
    if (r.heapBytes - this.baselineBytes < minGrowthBytes) return false;
    if (this.predictPauseMs(r) > this.maxPauseMs) {
      this.heldPause++;
      return false;
    }
    return true;
  }

  /** Records a release: its pause teaches the prediction, its result is the next baseline. */
  released(result: V8ReleaseResult): void {
    this.releases++;
    this.releasedBytes += Math.max(0, result.releasedBytes);
    this.longestPauseMs = Math.max(this.longestPauseMs, result.pauseMs);
    if (result.heapBeforeBytes > 0) this.msPerMiB = (result.pauseMs * MiB) / result.heapBeforeBytes;
    this.baselineBytes = result.heapAfterBytes;
  }
}
