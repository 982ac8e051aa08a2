// A monitor's auto-trim: what it does around the trim policy (src/cure/policy.ts decides): cap
// glibc's arenas at start, watch for the process going quiet and for major GCs between samples,
// ask V8 for its idle heap when the process goes quiet (src/cure/v8-policy.ts decides), show each
// sample to the policy with the event-loop load and the cgroup limit, trim when the policy says
// so, and count what came back.
import * as v8 from 'node:v8';
import { allocator, trim } from '../read/core';
import { watchActivity, type StopWatching } from '../read/activity';
import { cgroupMemory } from '../read/cgroup';
import type { PolicySample, TrimPolicy, TrimReason } from '../cure/policy';
import { tune, tunables } from '../cure/tunables';
import { canReleaseV8Heap, releaseV8Heap, type V8ReleaseResult } from '../cure/v8heap';
import { V8ReleasePolicy } from '../cure/v8-policy';
import type { Snapshot, TrimResult } from '../base/types';

/** What the auto-trim needs of its monitor. */
export interface AutoTrimHost {
  readonly detail: boolean;
  readonly intervalMs: number;
  /** Takes a sample early, for a trigger between samples. */
  sampleNow(reason: TrimReason): void;
  fail(err: Error): void;
  trimmed(result: TrimResult): void;
  v8Released(result: V8ReleaseResult): void;
  /** Whether automatic trims are paused (pauseTrim()): the V8 release waits with them. */
  paused(): boolean;
}

/** After a V8 release, the quiet sample waits this long: what died in that GC is freed after it, partly on a background thread. */
const AFTER_V8_RELEASE_MS = 300;
/**
 * After a quiet trim that left thread-arena tops for later (arenas it saw for the first time, or
 * too new), one more quiet sample this much later: the trim that releases them needs an arena to
 * have been seen a second before.
 */
const ARENA_FOLLOW_UP_MS = 1100;

export class AutoTrim {
  trims = 0;
  trimsBy: Record<TrimReason, number> = { interval: 0, quiet: 0, gc: 0 };
  releasedBytes = 0;
  /** The arena cap this auto-trim set, or null. */
  arenaCap: number | null = null;
  /** Releases of V8's idle heap at quiet moments; null when off (AutoTrimOptions.v8Heap) or unsupported. */
  v8: V8ReleasePolicy | null = null;
  // The JS thread's event-loop utilization at the previous sample the policy saw.
  private lastElu: ReturnType<typeof performance.eventLoopUtilization> | null = null;
  // When the policy last saw a sample.
  private policyAt = -Infinity;
  private stopWatching: StopWatching | null = null;
  private gcTimer: NodeJS.Timeout | null = null;
  private quietTimer: NodeJS.Timeout | null = null;
  // Whether this quiet moment's follow-up sample (for arena tops left pending) was taken.
  private followedUp = false;

  constructor(
    readonly policy: TrimPolicy,
    private readonly host: AutoTrimHost,
  ) {}

  start(): void {
    this.policyAt = -Infinity;
    this.lastElu = null;
    this.capArenas();
    const o = this.policy.options;
    if (o.whenQuiet && o.v8Heap && this.v8 === null && canReleaseV8Heap())
      this.v8 = new V8ReleasePolicy(o.v8MaxPauseMs, {
        heapBytes: v8.getHeapStatistics().total_physical_size,
      });
    this.watch();
  }

  stop(): void {
    this.stopWatching?.();
    this.stopWatching = null;
    if (this.gcTimer) clearTimeout(this.gcTimer);
    this.gcTimer = null;
    if (this.quietTimer) clearTimeout(this.quietTimer);
    this.quietTimer = null;
  }

  // glibc: fewer arenas, fewer top chunks that no trim reaches (AutoTrimOptions.arenaMax). Only
  // where nobody chose a cap: the environment, GLIBC_TUNABLES or a mallopt always win.
  private capArenas(): void {
    const cap = this.policy.options.arenaMax ?? null;
    if (cap === null || this.arenaCap !== null || allocator().name !== 'glibc') return;
    try {
      if (tunables().settings['glibc.malloc.arena_max']?.source !== 'default') return;
      tune({ arenaMax: cap });
      this.arenaCap = cap;
    } catch (err) {
      this.host.fail(err as Error);
    }
  }

  // The policy's triggers between samples: each takes a sample early (one at a time).
  private watch(): void {
    const p = this.policy;
    if (!p.options.whenQuiet && !p.options.afterGc) return;
    this.stopWatching = watchActivity(1000, {
      onWindow: p.options.whenQuiet
        ? (share, start, end) => {
            if (p.noteActivity(share, start, end)) this.quiet();
          }
        : undefined,
      onMajorGc: p.options.afterGc
        ? () => {
            if (this.gcTimer || !p.wantsSampleAfterGc()) return;
            // Backing stores are freed after the GC, partly on a background thread.
            this.gcTimer = setTimeout(() => {
              this.gcTimer = null;
              this.host.sampleNow('gc');
            }, 500);
            this.gcTimer.unref();
          }
        : undefined,
    });
  }

  // The process has gone quiet after a burst: V8's idle heap first (on this thread, while nothing
  // else runs), then a sample for the quiet trim, which also returns what that GC freed in malloc.
  private quiet(): void {
    if (this.quietTimer) return;
    this.followedUp = false;
    if (this.releaseV8()) this.quietSampleIn(AFTER_V8_RELEASE_MS);
    else this.host.sampleNow('quiet');
  }

  // A quiet sample `ms` from now (one pending at a time).
  private quietSampleIn(ms: number): void {
    this.quietTimer = setTimeout(() => {
      this.quietTimer = null;
      this.host.sampleNow('quiet');
    }, ms);
    this.quietTimer.unref();
  }

  private releaseV8(): boolean {
    const v = this.v8;
    if (!v || this.host.paused()) return false;
    const heapBytes = v8.getHeapStatistics().total_physical_size;
    const o = this.policy.options;
    const growth =
      o.minGrowthBytes ??
      this.policy.floorBytes({ rssBytes: process.memoryUsage.rss(), limit: this.cgroupLimit() }) / 2;
    if (!v.shouldRelease({ heapBytes }, growth)) return false;
    try {
      const result = releaseV8Heap();
      if (!result.supported) {
        this.v8 = null;
        return false;
      }
      v.released(result);
      this.host.v8Released(result);
      return true;
    } catch (err) {
      this.host.fail(err as Error);
      return false;
    }
  }

  // The cgroup limit the policy weighs (memory.high, else the hard limit; v1 or v2), read only when
  // a trim could follow (cgroupMemory() reads about eight files).
  private cgroupLimit(): PolicySample['limit'] {
    const where = this.policy.options.cgroup;
    if (!where) return null;
    const c = cgroupMemory(where);
    if (!c || c.currentBytes === null) return null;
    const bytes = c.highBytes ?? c.maxBytes;
    return bytes === null ? null : { bytes, headroomBytes: bytes - c.currentBytes };
  }

  /**
   * Shows a sample to the policy and trims when it says so. `early`: the sample was taken early
   * for the verdict (the policy sees interval samples at the interval asked for, as it was tuned to).
   */
  async sample(
    sample: Snapshot & { v8HeapBytes: number },
    reason: TrimReason,
    early: boolean,
  ): Promise<void> {
    const p = this.policy;
    if (!allocator().canTrim) return;
    const at = performance.now();
    if (reason === 'interval' && early && at - this.policyAt < this.host.intervalMs) return;
    this.policyAt = at;
    // The policy was tuned on what a sample carried before the periodic resident free reading:
    // it keeps seeing glibc's resident free figure only with detail, so that consecutive samples
    // it compares always measure free memory the same way.
    const periodic = !this.host.detail && allocator().name === 'glibc';
    const elu = performance.eventLoopUtilization();
    const busyShare = this.lastElu ? performance.eventLoopUtilization(elu, this.lastElu).utilization : null;
    this.lastElu = elu;
    const s: PolicySample = {
      ...sample,
      busyShare,
      ...(periodic
        ? { residentFreeBytes: null, ratios: { ...sample.ratios, residentFragmentation: null } }
        : {}),
      limit: this.cgroupLimit(),
    };
    if (!p.shouldTrim(s, performance.now(), reason)) return;
    const result: TrimResult = await trim();
    p.trimmed(s, result, performance.now(), reason);
    if (reason === 'quiet' && p.pendingArenas > 0 && !this.quietTimer && !this.followedUp) {
      this.followedUp = true;
      this.quietSampleIn(ARENA_FOLLOW_UP_MS);
    }
    this.trims++;
    this.trimsBy[reason]++;
    this.releasedBytes += Math.max(0, result.releasedBytes ?? 0);
    this.host.trimmed(result);
  }
}
