// Periodic sampling with a bounded overhead, a short history, and an optional trim policy.
import { EventEmitter } from 'node:events';
import { getHeapStatistics } from 'node:v8';
import { allocator, snapshotAsync } from '../read/core';
import { jemallocCommand } from '../read/libraries';
import { Capture } from '../capture/capture';
import { readCaptureOptions, type CaptureOptions } from '../capture/capture-episode';
import { readTrimOptions, TrimPolicy, type AutoTrimOptions, type TrimReason } from '../cure/policy';
import type { V8ReleaseResult } from '../cure/v8heap';
import { AutoTrim } from './auto-trim';
import { claimProcess, releaseProcess, type MonitorElsewhere } from './process-claim';
import { Pacing, type Budget, type IntervalReason } from './pacing';
import { attachMonitor, type ReadingSourceHandle } from './reading';
import { Ring, Streams } from './sample-stream';
import { verdict, type Verdict, type VerdictOptions } from '../diagnose/verdict';
import type { Snapshot, TrimResult } from '../base/types';

export type { Budget, IntervalReason } from './pacing';
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
  /** Releases of V8's idle heap at quiet moments (AutoTrimOptions.v8Heap). */
  v8Releases: number;
  /** V8 heap pages they gave back, bytes. */
  v8ReleasedBytes: number;
  /** The longest JS-thread pause one of them took, ms (0 before the first). */
  v8LongestPauseMs: number;
  /** V8 releases not run because their predicted pause was over AutoTrimOptions.v8MaxPauseMs. */
  v8ReleasesHeldPause: number;
  trimPaused: boolean;
}

/**
 * Samples the allocator on an interval, off the JS thread, keeping a short history. Events:
 * 'sample' (Sample), 'trim' (TrimResult), 'v8-release' (V8ReleaseResult, with autoTrim), 'capture' (CaptureInfo, with options.capture), 'error' (Error; only emitted when a listener exists, so
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
  private readonly pacing: Pacing;
  private readonly autoTrim: AutoTrim | null;
  private readonly streams = new Streams<Sample>();
  private timer: NodeJS.Timeout | null = null;
  // While running, each sample is what health and metrics endpoints serve.
  private shared: ReadingSourceHandle | null = null;
  private running = false;
  private inFlight = false;
  private peaks = {
    rss: null as number | null,
    allocated: null as number | null,
    free: null as number | null,
  };
  private queuedReason: TrimReason | null = null;
  private timerReason: TrimReason = 'interval';
  // When the last sample started.
  private lastSampleAt = -Infinity;
  private pauses = 0;
  /** The last error a sample or trim ran into, or null. */
  lastError: Error | null = null;
  // The capture (options.capture): its pending bundle, settings; null without one.
  private readonly capture: Capture | null;
  // Another thread's monitor when it owns the process-wide actions (set at start).
  private claim: MonitorElsewhere | null = null;

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
    this.autoTrim = trimOptions && new AutoTrim(new TrimPolicy(trimOptions), this.autoTrimHost());
    const captureSettings = readCaptureOptions(options.capture);
    this.capture = captureSettings && new Capture(captureSettings, this);
    this.ring = new Ring(historySize);
    this.pacing = new Pacing(this.intervalMs, this.maxOverhead);
    if (checkBoolean('options.start', options.start, true)) this.start();
  }

  /**
   * Where another thread's monitor owns the process-wide actions (auto-trim, V8 release, capture),
   * which thread; null when this one does (or is stopped). One monitor per process: a second one,
   * in another thread, only reads, and a warning (code FRAGSTAT_MONITOR_ELSEWHERE) says so once.
   */
  get elsewhere(): MonitorElsewhere | null {
    return this.running ? this.claim : null;
  }

  /** Starts sampling (the first sample is taken at once). Does nothing if already running. */
  start(): this {
    if (this.running) return this;
    this.running = true;
    this.claim = claimProcess();
    this.streams.reopen();
    this.pacing.start(performance.now());
    this.shared = attachMonitor(this.detail, () => this.verdict());
    if (!this.claim) this.autoTrim?.start();
    this.schedule(0);
    return this;
  }

  /** Stops sampling and ends every async iteration. */
  stop(): void {
    if (this.running && !this.claim) releaseProcess();
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.autoTrim?.stop();
    this.queuedReason = null;
    this.shared?.detach();
    this.shared = null;
    this.streams.end();
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
    return this.pacing.budget(this.running ? performance.now() : null);
  }

  stats(): MonitorStats {
    const h = this.ring.toArray();
    const a = this.autoTrim;
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
      trims: a ? a.trims : 0,
      trimReleasedBytes: a ? a.releasedBytes : 0,
      trimIntervalMs: a ? a.policy.intervalMs : null,
      trimsUndone: a ? a.policy.undone : 0,
      trimsHeldBusy: a ? a.policy.busySkips : 0,
      trimsBy: a ? { ...a.trimsBy } : { interval: 0, quiet: 0, gc: 0 },
      arenaCap: a ? a.arenaCap : null,
      v8Releases: a?.v8 ? a.v8.releases : 0,
      v8ReleasedBytes: a?.v8 ? a.v8.releasedBytes : 0,
      v8LongestPauseMs: a?.v8 ? a.v8.longestPauseMs : 0,
      v8ReleasesHeldPause: a?.v8 ? a.v8.heldPause : 0,
      trimPaused: this.pauses > 0,
    };
  }

  /**
   * Every sample from now on, until stop() (or until the loop breaks). Each iterator has its own
   * queue, bounded by historySize: a slow consumer loses the oldest samples, never blocks sampling.
   */
  [Symbol.asyncIterator](): AsyncIterator<Sample> {
    return this.streams.iterator();
  }

  // What the auto-trim calls back into.
  private autoTrimHost() {
    return {
      detail: this.detail,
      intervalMs: this.intervalMs,
      sampleNow: (reason: TrimReason) => this.sampleNow(reason),
      fail: (err: Error) => this.fail(err),
      trimmed: (result: TrimResult) => this.emitSafely('trim', result),
      v8Released: (result: V8ReleaseResult) => this.emitSafely('v8-release', result),
      paused: () => this.pauses > 0,
    };
  }

  private schedule(delay: number, reason: TrimReason = 'interval'): void {
    if (!this.running) return;
    this.timerReason = reason;
    this.timer = setTimeout(() => void this.tick(reason), delay);
    this.timer.unref();
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
    this.schedule(Math.max(0, this.lastSampleAt + this.pacing.budgetMs - performance.now()), r);
  }

  private async tick(reason: TrimReason = 'interval'): Promise<void> {
    if (!this.running || this.inFlight) return;
    this.inFlight = true;
    this.lastSampleAt = performance.now();
    try {
      const residentFree = this.pacing.residentDue(this.lastSampleAt);
      const snap = await snapshotAsync({ detail: this.detail, residentFree });
      this.pacing.account(
        snap.durationMs,
        residentFree && !this.detail && allocator().name === 'glibc',
        performance.now(),
      );
      const sample: Sample = {
        ...snap,
        intervalMs: this.pacing.effectiveIntervalMs,
        intervalReason: this.pacing.intervalReason,
        v8HeapBytes: getHeapStatistics().total_physical_size,
      };
      this.record(sample);
      if (!this.claim) this.capture?.sample(sample);
      this.shared?.publish(snap);
      if (this.running) this.deliver(sample);
      if (this.autoTrim && this.running && !this.claim && this.pauses === 0) {
        await this.autoTrim.sample(sample, reason, this.pacing.intervalReason === 'early');
      }
    } catch (err) {
      this.fail(err as Error);
    } finally {
      this.inFlight = false;
      const queued = this.queuedReason;
      this.queuedReason = null;
      if (queued) this.sampleNow(queued);
      else this.schedule(this.pacing.effectiveIntervalMs);
    }
  }

  private record(s: Sample): void {
    this.ring.push(s);
    const max = (a: number | null, b: number | null) => (b === null ? a : a === null ? b : Math.max(a, b));
    this.peaks.rss = max(this.peaks.rss, s.rssBytes);
    this.peaks.allocated = max(this.peaks.allocated, s.allocatedBytes);
    this.peaks.free = max(this.peaks.free, s.freeBytes);
  }

  private deliver(s: Sample): void {
    this.streams.push(s, this.ring.size);
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

  private fail(err: Error): void {
    this.lastError = err;
    if (this.listenerCount('error') > 0) this.emitSafely('error', err);
  }
}

/** Creates and starts a Monitor. */
export function monitor(options?: MonitorOptions): Monitor {
  return new Monitor(options);
}
