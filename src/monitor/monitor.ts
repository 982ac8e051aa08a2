// Periodic sampling with a bounded overhead, a short history, and an optional trim policy.
import { EventEmitter } from 'node:events';
import { getHeapStatistics } from 'node:v8';
import { allocator, snapshotAsync, trim } from '../read/core';
import { jemallocCommand } from '../read/libraries';
import { watchActivity, type StopWatching } from '../read/activity';
import { cgroupMemory } from '../read/cgroup';
import { Capture } from '../capture/capture';
import { readCaptureOptions, type CaptureOptions } from '../capture/capture-episode';
import {
  readTrimOptions,
  TrimPolicy,
  type AutoTrimOptions,
  type PolicySample,
  type TrimReason,
} from '../cure/policy';
import { tune, tunables } from '../cure/tunables';
import { attachMonitor, type ReadingSourceHandle } from './reading';
import { verdict, type Verdict, type VerdictOptions } from '../diagnose/verdict';
import type { Snapshot, TrimResult } from '../base/types';
import { checkBoolean, checkKeys, checkNumber, checkOptions } from '../base/validate';

/** Options of monitor(). */
export interface MonitorOptions {
  /**
   * Wanted time between samples, ms. Default 10000. At least 10. For the first five minutes the
   * monitor samples at most 5 s apart (still within maxOverhead), so that a verdict has enough
   * readings within minutes of start.
   */
  intervalMs?: number;
  /** Take detail snapshots (glibc malloc_info: arenas, largest free chunk). Default false. */
  detail?: boolean;
  /** Samples kept in history(). Default 360 (an hour at the default interval). 2 to 100000. */
  historySize?: number;
  /**
   * Largest share of wall time that sampling may take, from 0 (exclusive) to 0.5. Default 0.002
   * (0.2%). When the recent samples take longer on average than `intervalMs * maxOverhead`, the
   * interval is stretched so the share holds (a glibc snapshot walks every free chunk: tens of ms
   * on a fragmented heap); one slow read among twenty stretches it by a twentieth of what it would alone.
   */
  maxOverhead?: number;
  /** Trim automatically when free memory is both large and a large share of the heap. Default off. */
  autoTrim?: boolean | AutoTrimOptions;
  /** Start sampling at once (default) or wait for start(). */
  start?: boolean;
  /** Write one diagnostic bundle as the cgroup's or V8's heap limit comes near (docs/CAPTURE.md). Default off. */
  capture?: CaptureOptions;
}

/**
 * Why the interval in effect is what it is: as asked ('requested'), shortened in the first five
 * minutes ('early'), or stretched so that sampling keeps to maxOverhead ('overhead').
 */
export type IntervalReason = 'requested' | 'early' | 'overhead';

/**
 * A monitor sample: a snapshot with the monitor's bookkeeping. Under glibc, residentFreeBytes is
 * read (from /proc/self/smaps, off the JS thread) every 10 s from 10 s after start (less often where
 * that read alone would take more than half of maxOverhead, but at least every minute);
 * the samples in between carry null there.
 */
export interface Sample extends Snapshot {
  /** The interval in effect after this sample, ms (stretched to respect maxOverhead). */
  intervalMs: number;
  /** Why intervalMs is what it is. */
  intervalReason: IntervalReason;
  /** V8's heap when the sample was taken (v8.getHeapStatistics().total_physical_size), bytes. */
  v8HeapBytes: number;
}

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

/** Peaks and rates over the samples in history. */
export interface MonitorStats {
  samples: number;
  /** Highest values seen since the monitor started (not only in history). */
  peakRssBytes: number | null;
  peakAllocatedBytes: number | null;
  peakFreeBytes: number | null;
  /** Change per second between the oldest and newest sample in history. */
  rssBytesPerSecond: number | null;
  allocatedBytesPerSecond: number | null;
  trims: number;
  trimReleasedBytes: number;
  /** Current minimum interval between automatic trims, ms (grows when trims release nothing). */
  trimIntervalMs: number | null;
  /** Automatic trims judged undone: the process touched as many pages again by the next sample (see AutoTrimOptions.maxRefaultRatio). */
  trimsUndone: number;
  /** Automatic trims held back because the JS thread was busy (AutoTrimOptions.maxBusy). */
  trimsHeldBusy: number;
  /** Automatic trims by what led to them: the interval, the process going quiet, a V8 major GC. */
  trimsBy: Record<TrimReason, number>;
  /** The arena cap this monitor set (AutoTrimOptions.arenaMax), or null when it set none. */
  arenaCap: number | null;
  trimPaused: boolean;
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

class Ring<T> {
  private items: T[] = [];
  private start = 0;
  constructor(private readonly capacity: number) {}
  push(item: T): void {
    if (this.items.length < this.capacity) this.items.push(item);
    else {
      this.items[this.start] = item;
      this.start = (this.start + 1) % this.capacity;
    }
  }
  toArray(): T[] {
    return [...this.items.slice(this.start), ...this.items.slice(0, this.start)];
  }
  get size(): number {
    return this.items.length;
  }
}

/**
 * Samples the allocator on an interval, off the JS thread, keeping a short history. Events:
 * 'sample' (Sample), 'trim' (TrimResult), 'capture' (CaptureInfo, with options.capture), 'error' (Error; only emitted when a listener exists, so
 * a failing read never crashes the process). Also an async iterable of samples.
 * Its timer is unref'd: it never keeps the process alive.
 */
// Marks a Monitor whichever build (CommonJS or ES module) made it, so instanceof holds across them.
const monitorBrand = Symbol.for('fragstat.Monitor');

export class Monitor extends EventEmitter {
  /** True for a Monitor from either build of fragstat (CommonJS or ES module) in this process. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this !== Monitor) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === 'object' && value !== null && monitorBrand in value;
  }
  readonly intervalMs: number;
  readonly detail: boolean;
  readonly maxOverhead: number;
  private readonly ring: Ring<Sample>;
  private readonly policy: TrimPolicy | null;
  private timer: NodeJS.Timeout | null = null;
  // While running, each sample is what health and metrics endpoints serve.
  private shared: ReadingSourceHandle | null = null;
  private running = false;
  private stopped = false; // stop() was called and start() not since
  private inFlight = false;
  private startedAt = 0;
  private sampleMsTotal = 0;
  private recentCosts: number[] = [];
  private effectiveInterval: number;
  private intervalReason: IntervalReason = 'requested';
  // glibc's resident free figure needs an smaps read: at most this often (RESIDENT_EVERY_MS).
  private residentAt = 0;
  private residentEveryMs = RESIDENT_EVERY_MS;
  // The JS thread's event-loop utilization at the previous sample the policy saw.
  private lastElu: ReturnType<typeof performance.eventLoopUtilization> | null = null;
  // When the policy last saw a sample.
  private policyAt = -Infinity;
  private peaks = {
    rss: null as number | null,
    allocated: null as number | null,
    free: null as number | null,
  };
  private trims = 0;
  private trimsBy: Record<TrimReason, number> = { interval: 0, quiet: 0, gc: 0 };
  private trimReleased = 0;
  // The policy's triggers between samples (quiet after a burst, major GCs).
  private stopWatching: StopWatching | null = null;
  private gcTimer: NodeJS.Timeout | null = null;
  private queuedReason: TrimReason | null = null;
  private timerReason: TrimReason = 'interval';
  // When the last sample started, and the least time between two samples that keeps to
  // maxOverhead (the mean recent read / maxOverhead): early samples keep to it too.
  private lastSampleAt = -Infinity;
  private budgetMs = 0;
  private arenaCap: number | null = null;
  private pauses = 0;
  // One queue per live async iterator: each gets every sample from its creation on.
  private readonly iterators = new Set<{
    queue: Sample[];
    waiter: ((r: IteratorResult<Sample>) => void) | null;
  }>();
  /** The last error a sample or trim ran into, or null. */
  lastError: Error | null = null;
  // The capture (options.capture): its pending bundle, settings; null without one.
  private readonly capture: Capture | null;

  constructor(options: MonitorOptions = {}) {
    super();
    Object.defineProperty(this, monitorBrand, { value: true });
    checkOptions('monitor(options)', options);
    checkKeys('monitor(options)', options, [
      'intervalMs',
      'detail',
      'historySize',
      'maxOverhead',
      'autoTrim',
      'start',
      'capture',
    ]);
    this.intervalMs = checkNumber('options.intervalMs', options.intervalMs, 10_000, 10, 2 ** 31 - 1);
    this.detail = checkBoolean('options.detail', options.detail, false);
    const historySize = checkNumber('options.historySize', options.historySize, 360, 2, 100_000, true);
    this.maxOverhead = checkNumber('options.maxOverhead', options.maxOverhead, 0.002, Number.MIN_VALUE, 0.5);
    const trimOptions = readTrimOptions(options.autoTrim);
    this.policy = trimOptions && new TrimPolicy(trimOptions);
    const captureSettings = readCaptureOptions(options.capture);
    this.capture = captureSettings && new Capture(captureSettings, this);
    this.ring = new Ring(historySize);
    this.effectiveInterval = this.intervalMs;
    if (checkBoolean('options.start', options.start, true)) this.start();
  }

  /** Starts sampling (the first sample is taken at once). Does nothing if already running. */
  start(): this {
    if (this.running) return this;
    this.running = true;
    this.stopped = false;
    this.startedAt = performance.now();
    this.sampleMsTotal = 0;
    this.residentAt = this.startedAt; // the first after RESIDENT_EVERY_MS
    this.residentEveryMs = RESIDENT_EVERY_MS;
    this.policyAt = -Infinity;
    this.lastElu = null;
    this.shared = attachMonitor(this.detail, () => this.verdict());
    this.capArenas();
    this.watch();
    this.schedule(0);
    return this;
  }

  /** Stops sampling and ends every async iteration. */
  stop(): void {
    this.running = false;
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.stopWatching?.();
    this.stopWatching = null;
    if (this.gcTimer) clearTimeout(this.gcTimer);
    this.gcTimer = null;
    this.queuedReason = null;
    this.shared?.detach();
    this.shared = null;
    for (const it of this.iterators) {
      it.waiter?.({ value: undefined, done: true });
      it.waiter = null;
    }
    this.iterators.clear();
    this.emit('stop');
  }

  /** Whether the monitor is sampling. */
  get isRunning(): boolean {
    return this.running;
  }

  /**
   * Holds automatic trims (sampling goes on) until resumeTrim() is called as many times as
   * pauseTrim() was: wrap bulk work that frees and reallocates a lot.
   */
  pauseTrim(): void {
    this.pauses++;
  }

  /** Undoes one pauseTrim(). */
  resumeTrim(): void {
    if (this.pauses > 0) this.pauses--;
  }

  /** Runs `fn` with automatic trims paused, resuming them however it ends. */
  async withTrimPaused<T>(fn: () => T | Promise<T>): Promise<T> {
    this.pauseTrim();
    try {
      return await fn();
    } finally {
      this.resumeTrim();
    }
  }

  /** Samples in history, oldest first. */
  history(): Sample[] {
    return this.ring.toArray();
  }

  /** The newest sample, or null before the first. */
  latest(): Sample | null {
    const h = this.ring.toArray();
    return h.length ? h[h.length - 1] : null;
  }

  /**
   * Why RSS moves, from the samples in history: JS heap growth, native growth, fragmentation,
   * stable, or insufficient evidence (fewer than `minSamples`, default 30). See verdict(). The
   * fragmentation advice names the command that runs this process under jemalloc.
   */
  verdict(options?: VerdictOptions): Verdict {
    return verdict(this.ring.toArray(), { jemallocCommand: jemallocCommand(), ...options });
  }

  budget(): Budget {
    const elapsed = this.running ? performance.now() - this.startedAt : 0;
    return {
      maxOverhead: this.maxOverhead,
      intervalMs: this.intervalMs,
      effectiveIntervalMs: this.effectiveInterval,
      intervalReason: this.intervalReason,
      lastSampleMs: this.recentCosts.length ? this.recentCosts[this.recentCosts.length - 1] : null,
      overhead: elapsed > 0 ? this.sampleMsTotal / elapsed : 0,
    };
  }

  stats(): MonitorStats {
    const h = this.ring.toArray();
    const rate = (key: 'rssBytes' | 'allocatedBytes'): number | null => {
      if (h.length < 2) return null;
      const a = h[0];
      const b = h[h.length - 1];
      const dt = (b.timestamp - a.timestamp) / 1000;
      if (a[key] === null || b[key] === null || dt <= 0) return null;
      return (b[key]! - a[key]!) / dt;
    };
    return {
      samples: h.length,
      peakRssBytes: this.peaks.rss,
      peakAllocatedBytes: this.peaks.allocated,
      peakFreeBytes: this.peaks.free,
      rssBytesPerSecond: rate('rssBytes'),
      allocatedBytesPerSecond: rate('allocatedBytes'),
      trims: this.trims,
      trimReleasedBytes: this.trimReleased,
      trimIntervalMs: this.policy ? this.policy.intervalMs : null,
      trimsUndone: this.policy ? this.policy.undone : 0,
      trimsHeldBusy: this.policy ? this.policy.busySkips : 0,
      trimsBy: { ...this.trimsBy },
      arenaCap: this.arenaCap,
      trimPaused: this.pauses > 0,
    };
  }

  /**
   * Every sample from now on, until stop() (or until the loop breaks). Each iterator has its own
   * queue, bounded by historySize: a slow consumer loses the oldest samples, never blocks sampling.
   */
  [Symbol.asyncIterator](): AsyncIterator<Sample> {
    const it = { queue: [] as Sample[], waiter: null as ((r: IteratorResult<Sample>) => void) | null };
    if (!this.stopped) this.iterators.add(it);
    const done = (): IteratorResult<Sample> => ({ value: undefined, done: true });
    return {
      next: () => {
        const queued = it.queue.shift();
        if (queued) return Promise.resolve({ value: queued, done: false });
        if (!this.iterators.has(it)) return Promise.resolve(done());
        return new Promise((resolve) => {
          it.waiter = resolve;
        });
      },
      return: () => {
        this.iterators.delete(it);
        it.queue.length = 0;
        it.waiter?.(done());
        it.waiter = null;
        return Promise.resolve(done());
      },
    };
  }

  private schedule(delay: number, reason: TrimReason = 'interval'): void {
    if (!this.running) return;
    this.timerReason = reason;
    this.timer = setTimeout(() => void this.tick(reason), delay);
    this.timer.unref();
  }

  // glibc: fewer arenas, fewer top chunks that no trim reaches (AutoTrimOptions.arenaMax). Only
  // where nobody chose a cap: the environment, GLIBC_TUNABLES or a mallopt always win.
  private capArenas(): void {
    const cap = this.policy?.options.arenaMax ?? null;
    if (cap === null || this.arenaCap !== null || allocator().name !== 'glibc') return;
    try {
      if (tunables().settings['glibc.malloc.arena_max']?.source !== 'default') return;
      tune({ arenaMax: cap });
      this.arenaCap = cap;
    } catch (err) {
      this.fail(err as Error);
    }
  }

  // The policy's triggers between samples: each takes a sample early (one at a time).
  private watch(): void {
    const p = this.policy;
    if (!p || (!p.options.whenQuiet && !p.options.afterGc)) return;
    this.stopWatching = watchActivity(1000, {
      onWindow: p.options.whenQuiet
        ? (share, start, end) => {
            if (p.noteActivity(share, start, end)) this.sampleNow('quiet');
          }
        : undefined,
      onMajorGc: p.options.afterGc
        ? () => {
            if (this.gcTimer || !p.wantsSampleAfterGc()) return;
            // Backing stores are freed after the GC, partly on a background thread.
            this.gcTimer = setTimeout(() => {
              this.gcTimer = null;
              this.sampleNow('gc');
            }, 500);
            this.gcTimer.unref();
          }
        : undefined,
    });
  }

  private sampleNow(reason: TrimReason): void {
    if (!this.running) return;
    // A quiet trim skips the interval: a GC sample asked for meanwhile must not take its place.
    const keep = (pending: TrimReason | null) => (pending === 'quiet' ? 'quiet' : reason);
    if (this.inFlight) {
      this.queuedReason = keep(this.queuedReason);
      return;
    }
    // No sooner than the overhead budget allows (a heap whose read takes 20 ms: 10 s after the
    // last sample), which is never later than the next regular sample.
    const r = keep(this.timer ? this.timerReason : null);
    if (this.timer) clearTimeout(this.timer);
    this.schedule(Math.max(0, this.lastSampleAt + this.budgetMs - performance.now()), r);
  }

  private async tick(reason: TrimReason = 'interval'): Promise<void> {
    if (!this.running || this.inFlight) return;
    this.inFlight = true;
    this.lastSampleAt = performance.now();
    try {
      const residentFree = this.lastSampleAt - this.residentAt >= this.residentEveryMs;
      if (residentFree) this.residentAt = this.lastSampleAt;
      const snap = await snapshotAsync({ detail: this.detail, residentFree });
      this.account(snap.durationMs, residentFree && !this.detail);
      const sample: Sample = {
        ...snap,
        intervalMs: this.effectiveInterval,
        intervalReason: this.intervalReason,
        v8HeapBytes: getHeapStatistics().total_physical_size,
      };
      this.record(sample);
      this.capture?.sample(sample);
      this.shared?.publish(snap);
      if (this.running) this.deliver(sample);
      await this.maybeTrim(sample, reason);
    } catch (err) {
      this.fail(err as Error);
    } finally {
      this.inFlight = false;
      const queued = this.queuedReason;
      this.queuedReason = null;
      if (queued) this.sampleNow(queued);
      else this.schedule(this.effectiveInterval);
    }
  }

  private account(costMs: number, periodic: boolean): void {
    this.sampleMsTotal += costMs;
    if (periodic && allocator().name === 'glibc') {
      // The periodic smaps read keeps to half the budget on its own period, and leaves the
      // interval to the allocator reads.
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
    const early =
      performance.now() - this.startedAt < EARLY_MS ? Math.min(this.intervalMs, EARLY_INTERVAL_MS) : null;
    const wanted = early ?? this.intervalMs;
    // setTimeout treats anything above 2^31-1 ms as 1 ms: never ask for more.
    this.effectiveInterval = Math.min(2 ** 31 - 1, Math.max(wanted, this.budgetMs));
    this.intervalReason =
      this.budgetMs > wanted ? 'overhead' : early !== null && early < this.intervalMs ? 'early' : 'requested';
  }

  private record(s: Sample): void {
    this.ring.push(s);
    const max = (a: number | null, b: number | null) => (b === null ? a : a === null ? b : Math.max(a, b));
    this.peaks.rss = max(this.peaks.rss, s.rssBytes);
    this.peaks.allocated = max(this.peaks.allocated, s.allocatedBytes);
    this.peaks.free = max(this.peaks.free, s.freeBytes);
  }

  private deliver(s: Sample): void {
    for (const it of this.iterators) {
      if (it.waiter) {
        it.waiter({ value: s, done: false });
        it.waiter = null;
      } else {
        it.queue.push(s);
        if (it.queue.length > this.ring.size) it.queue.shift();
      }
    }
    this.emitSafely('sample', s);
  }

  // A throwing listener is the application's bug, not a sampling failure: sampling and the trim
  // policy go on, and the exception is rethrown on its own tick, as it would surface from any
  // other callback.
  private emitSafely(event: string, value: unknown): void {
    try {
      this.emit(event, value);
    } catch (err) {
      process.nextTick(() => {
        throw err;
      });
    }
  }

  // The cgroup limit the policy weighs (memory.high, else the hard limit; v1 or v2), read only when
  // a trim could follow (cgroupMemory() reads about eight files).
  private cgroupLimit(): PolicySample['limit'] {
    const where = this.policy?.options.cgroup;
    if (!where) return null;
    const c = cgroupMemory(where);
    if (!c || c.currentBytes === null) return null;
    const bytes = c.highBytes ?? c.maxBytes;
    return bytes === null ? null : { bytes, headroomBytes: bytes - c.currentBytes };
  }

  private async maybeTrim(sample: Sample, reason: TrimReason): Promise<void> {
    const p = this.policy;
    if (!p || !this.running || this.pauses > 0 || !allocator().canTrim) return;
    // The early samples are for the verdict: the policy sees interval samples at the interval
    // asked for, as it was tuned to.
    const at = performance.now();
    if (reason === 'interval' && this.intervalReason === 'early' && at - this.policyAt < this.intervalMs)
      return;
    this.policyAt = at;
    // The policy was tuned on what a sample carried before the periodic resident free reading:
    // it keeps seeing glibc's resident free figure only with detail, so that consecutive samples
    // it compares always measure free memory the same way.
    const periodic = !this.detail && allocator().name === 'glibc';
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
    this.trims++;
    this.trimsBy[reason]++;
    this.trimReleased += Math.max(0, result.releasedBytes ?? 0);
    this.emitSafely('trim', result);
  }

  private fail(err: Error): void {
    this.lastError = err;
    if (this.listenerCount('error') > 0) this.emitSafely('error', err);
  }
}

/** Creates and starts a Monitor. */
export function monitor(options?: MonitorOptions): Monitor {
  return new Monitor(options);
}
