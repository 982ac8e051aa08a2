// When to trim automatically: the gates a monitor's auto-trim applies to each sample, and what it
// learns from each trim. Plain state and arithmetic over samples; the monitor does the I/O.
import * as os from 'node:os';
import { checkCgroupOptions, type CgroupMemoryOptions } from '../read/cgroup';
import type { Snapshot, TrimResult } from '../base/types';
import { checkBoolean, checkKeys, checkNumber, describe } from '../base/validate';

/**
 * The trim policy. A trim runs after a sample when every condition holds; samples come on the
 * monitor's interval, when the process goes quiet after a burst of work (whenQuiet) and after a
 * V8 major GC (afterGc).
 */
export interface AutoTrimOptions {
  /**
   * Free memory at least this, bytes: the free memory in RAM (residentFreeBytes) where the
   * allocator can tell it, else freeBytes. Default: 10% of RSS, at least 8 MiB (a floor relative to
   * the process's size: 64 MiB would never be reached by a 100 MiB service and is noise to a 4 GiB
   * one).
   */
  minFreeBytes?: number;
  /** That free memory as a share of what the allocator holds (residentFragmentation, else fragmentation) at least this. Default 0.25. */
  minFragmentation?: number;
  /**
   * Since the last trim, memory that neither V8's heap nor live malloc bytes explain
   * (rssBytes - v8HeapBytes - allocatedBytes) grew by at least this, so there can be something new
   * to release. V8 is left out: its heap shrinking after a GC would otherwise close this gate for
   * good. Default: half the free-memory floor.
   */
  minGrowthBytes?: number;
  /** At least this long since the last trim, ms. Default 60000. Trims when quiet do not wait for it. */
  minIntervalMs?: number;
  /** A trim that releases less than this counts as releasing nothing. Default 1 MiB. */
  minReleasedBytes?: number;
  /**
   * Each trim that releases nothing (or is undone) doubles the minimum interval, up to this factor;
   * each quiet trim that does doubles the quiet time the next one waits for. Default 32.
   */
  maxBackoff?: number;
  /**
   * A trim counts as undone when, by the next sample, the process took this many minor page faults
   * per page it released (it touched the released memory again): the interval backs off as for a
   * trim that released nothing. Default 0.5.
   */
  maxRefaultRatio?: number;
  /**
   * Trim as soon as the process goes quiet after a burst of work, without waiting for
   * minIntervalMs: the moment a trim costs nobody anything and the memory a burst left behind is
   * largest. A burst is a second with CPU use of at least 4 x quietCpu; quiet is quietMs below
   * quietCpu. The other gates still hold. Default true.
   */
  whenQuiet?: boolean;
  /**
   * Trims other than quiet ones wait while the JS thread was busy for more than this share of the
   * time since the previous sample (its event-loop utilization): a trim holds the allocator's
   * locks, and the JS thread's own mallocs would wait for them in the middle of its work. Near a
   * cgroup limit (see cgroup) they do not wait. 1 turns the gate off. Default 0.5.
   */
  maxBusy?: number;
  /** CPU time (all threads) below this share of one core counts as quiet. Default 0.05. */
  quietCpu?: number;
  /** How long the process must stay quiet before that trim, ms (doubled per quiet trim undone). Default 2000. */
  quietMs?: number;
  /**
   * After a V8 major GC (which frees the memory of dead Buffers, zlib streams and other external
   * memory), take a sample half a second later instead of waiting for the next one, when the
   * interval would let a trim run; the gates still hold. Default true.
   */
  afterGc?: boolean;
  /**
   * glibc: cap the arenas malloc creates from now on (mallopt(M_ARENA_MAX)) when the monitor
   * starts, unless MALLOC_ARENA_MAX, GLIBC_TUNABLES or an earlier mallopt chose a cap. Each arena
   * keeps the free top of its heap resident, which malloc_trim cannot shrink: a service whose
   * native library runs many threads (sharp/libvips) otherwise idles with tens of MiB in them.
   * Existing arenas stay. glibc fixes its cap for good once the process has more than 8 arenas,
   * so start the monitor at start-up. Process-wide, and kept after the monitor stops. `false`
   * leaves malloc alone. Default: 2 x os.availableParallelism().
   */
  arenaMax?: number | false;
  /**
   * Under a cgroup memory limit (v2 memory.high where set, else memory.max; v1
   * memory.limit_in_bytes), trim sooner as the headroom shrinks: once less than a quarter of the
   * limit is left, the free-memory floor, the growth needed and the interval shrink in proportion
   * to the headroom (a tenth of the limit left: 40% of each), down to 1 MiB and 1 s. `true` (default) reads the process's own cgroup;
   * an object names another tree (`{ root, path }`, as cgroupMemory() takes); `false` ignores it.
   */
  cgroup?: boolean | CgroupMemoryOptions;
  /**
   * When the process goes quiet after a burst (whenQuiet), first ask V8 to give its heap's free
   * pages back (releaseV8Heap(): one full, compacting GC on the JS thread), then trim: V8 keeps
   * the pages a burst grew its heap into until its memory reducer happens to act, and no
   * malloc_trim reaches them. Only when V8's heap in RAM grew by at least half the free-memory
   * floor since the last release, and the pause is predicted to fit v8MaxPauseMs. `false` leaves
   * V8 alone. Default true.
   */
  v8Heap?: boolean;
  /**
   * The longest JS-thread pause a V8 release may be predicted to take, ms: the prediction is the
   * last release's pause per MiB of heap (at first 0.75 ms per MiB) times V8's heap in RAM.
   * Default 100 (V8's own bound for a memory-pressure GC).
   */
  v8MaxPauseMs?: number;
}

/** What the policy looks at in a sample. */
export type PolicySample = Pick<
  Snapshot,
  'rssBytes' | 'allocatedBytes' | 'freeBytes' | 'residentFreeBytes' | 'ratios'
> & {
  v8HeapBytes: number;
  /** The JS thread's event-loop utilization since the previous sample, 0 to 1; absent where unknown. */
  busyShare?: number | null;
  /** The cgroup's limit (memory.high, else memory.max) and what is left of it, bytes; absent without one. */
  limit?: { bytes: number; headroomBytes: number } | null;
};

const MiB = 1024 * 1024;
const PAGE = 4096;
/** The free-memory floor when minFreeBytes is not given: this share of RSS, at least FLOOR_MIN. */
const FLOOR_SHARE = 0.1;
const FLOOR_MIN = 8 * MiB;
/** A second with CPU use of this many times quietCpu is a burst. */
const BURST_FACTOR = 4;
/** Below this share of a cgroup limit left, the gates shrink with the headroom. */
const TIGHT_SHARE = 0.25;

/** The policy's options with their defaults; minFreeBytes and minGrowthBytes null when relative. */
export type TrimPolicyOptions = Required<
  Omit<AutoTrimOptions, 'minFreeBytes' | 'minGrowthBytes' | 'arenaMax' | 'cgroup'>
> & {
  /** null: no cgroup; else what cgroupMemory() is given. */
  cgroup: CgroupMemoryOptions | null;
  minFreeBytes: number | null;
  minGrowthBytes: number | null;
  /** null: leave malloc's arena cap alone. */
  arenaMax: number | null;
};

/** CPUs this process may use (os.availableParallelism() arrived in Node 18.14). */
const cpus = (): number =>
  typeof os.availableParallelism === 'function' ? os.availableParallelism() : Math.max(1, os.cpus().length);

/** Reads options.autoTrim: null when auto-trim is off. */
export function readTrimOptions(value: unknown): TrimPolicyOptions | null {
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
    'whenQuiet',
    'maxBusy',
    'quietCpu',
    'quietMs',
    'afterGc',
    'arenaMax',
    'cgroup',
    'v8Heap',
    'v8MaxPauseMs',
  ]);
  const t = o as AutoTrimOptions;
  const optional = (name: string, v: number | undefined) =>
    v === undefined ? null : checkNumber(`options.autoTrim.${name}`, v, 0, 0, Infinity);
  return {
    minFreeBytes: optional('minFreeBytes', t.minFreeBytes),
    minFragmentation: checkNumber('options.autoTrim.minFragmentation', t.minFragmentation, 0.25, 0, 1),
    minGrowthBytes: optional('minGrowthBytes', t.minGrowthBytes),
    minIntervalMs: checkNumber('options.autoTrim.minIntervalMs', t.minIntervalMs, 60_000, 0, Infinity),
    minReleasedBytes: checkNumber('options.autoTrim.minReleasedBytes', t.minReleasedBytes, MiB, 0, Infinity),
    maxBackoff: checkNumber('options.autoTrim.maxBackoff', t.maxBackoff, 32, 1, 1 << 20),
    maxRefaultRatio: checkNumber('options.autoTrim.maxRefaultRatio', t.maxRefaultRatio, 0.5, 0, Infinity),
    whenQuiet: checkBoolean('options.autoTrim.whenQuiet', t.whenQuiet, true),
    maxBusy: checkNumber('options.autoTrim.maxBusy', t.maxBusy, 0.5, 0, 1),
    quietCpu: checkNumber('options.autoTrim.quietCpu', t.quietCpu, 0.05, 0, 64),
    quietMs: checkNumber('options.autoTrim.quietMs', t.quietMs, 2000, 0, 2 ** 31 - 1),
    afterGc: checkBoolean('options.autoTrim.afterGc', t.afterGc, true),
    v8Heap: checkBoolean('options.autoTrim.v8Heap', t.v8Heap, true),
    v8MaxPauseMs: checkNumber('options.autoTrim.v8MaxPauseMs', t.v8MaxPauseMs, 100, 0, 60_000),
    cgroup: readCgroupOption(t.cgroup),
    arenaMax:
      t.arenaMax === false
        ? null
        : checkNumber('options.autoTrim.arenaMax', t.arenaMax, 2 * cpus(), 1, 1024, true),
  };
}

function readCgroupOption(v: unknown): CgroupMemoryOptions | null {
  if (v === undefined || v === true) return {};
  if (v === false) return null;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw new TypeError(
      `Expected a boolean or an object for options.autoTrim.cgroup but received ${describe(v)}`,
    );
  }
  return checkCgroupOptions('options.autoTrim.cgroup', 'options.autoTrim.cgroup', v);
}

/**
 * How much of each gate holds under a cgroup limit: 1 with room to spare, falling in proportion
 * to the headroom once less than TIGHT_SHARE of the limit is left (0 at or over the limit).
 */
export function limitScale(limit: PolicySample['limit']): number {
  if (!limit || limit.bytes <= 0) return 1;
  const left = limit.headroomBytes / limit.bytes;
  return left >= TIGHT_SHARE ? 1 : Math.max(0, left) / TIGHT_SHARE;
}

/** RSS that neither V8's heap nor live malloc bytes explain; null where a figure is missing. */
function unexplained(s: PolicySample): number | null {
  return s.rssBytes === null || s.allocatedBytes === null
    ? null
    : s.rssBytes - s.v8HeapBytes - s.allocatedBytes;
}

/** The minor page faults this process has taken so far. */
const minorFaults = (): number => process.resourceUsage().minorPageFault;

/** Why the policy is asked: the monitor's interval, the process going quiet, or a V8 major GC. */
export type TrimReason = 'interval' | 'quiet' | 'gc';

/** One monitor's auto-trim state. */
export class TrimPolicy {
  private lastTrimAt = -Infinity;
  private baseline: number | null = null;
  private backoff = 1;
  // The last trim, until the next sample judges whether it was undone.
  private pending: { faults: number; releasedPages: number; quiet: boolean } | null = null;
  // Quiet trims back off on their own: each one undone doubles the quiet time they wait for.
  private quietBackoff = 1;
  // The quiet trigger: whether a burst was seen since the last quiet sample, and when quiet began.
  private burst = false;
  private quietSince: number | null = null;
  /** Trims judged undone by the page faults that followed them. */
  undone = 0;
  /** Trims held back because the JS thread was busy (maxBusy). */
  busySkips = 0;
  /**
   * Thread arenas the last trim left for a later one (too new to release their tops, see
   * TrimResult.threadArenasPending): the next quiet trim does not wait for growth.
   */
  pendingArenas = 0;

  constructor(readonly options: TrimPolicyOptions) {}

  /** The least time between two trims now, ms (grows while trims release nothing or are undone). */
  get intervalMs(): number {
    return this.options.minIntervalMs * this.backoff;
  }

  /** The free-memory floor for this sample, bytes (lower as a cgroup limit comes near). */
  floorBytes(s: Pick<PolicySample, 'rssBytes' | 'limit'>): number {
    const floor = this.options.minFreeBytes ?? Math.max(FLOOR_MIN, FLOOR_SHARE * (s.rssBytes ?? 0));
    const scale = limitScale(s.limit);
    return scale === 1 ? floor : Math.min(floor, Math.max(MiB, floor * scale));
  }

  /**
   * Takes one window of CPU use (a share of one core over [start, end], ms) and says whether the
   * process has just gone quiet after a burst: then a sample should be taken for a quiet trim.
   */
  noteActivity(cpuShare: number, start: number, end: number): boolean {
    const p = this.options;
    if (!p.whenQuiet) return false;
    if (cpuShare >= p.quietCpu) {
      if (cpuShare >= BURST_FACTOR * p.quietCpu) this.burst = true;
      this.quietSince = null;
      return false;
    }
    this.quietSince ??= start;
    if (!this.burst || end - this.quietSince < p.quietMs * this.quietBackoff) return false;
    this.burst = false;
    return true;
  }

  /** Whether a major GC now is worth a sample: only when the interval would let a trim run. */
  wantsSampleAfterGc(now: number = performance.now()): boolean {
    return this.options.afterGc && now - this.lastTrimAt >= this.intervalMs;
  }

  /** Whether to trim after this sample; also judges the previous trim by the faults since. */
  shouldTrim(s: PolicySample, now: number = performance.now(), reason: TrimReason = 'interval'): boolean {
    this.judgeLastTrim();
    const p = this.options;
    const resident = s.residentFreeBytes !== null && s.ratios.residentFragmentation !== null;
    const free = resident ? s.residentFreeBytes : s.freeBytes;
    const frag = resident ? s.ratios.residentFragmentation : s.ratios.fragmentation;
    if (free === null || frag === null) return false;
    const floor = this.floorBytes(s);
    if (free < floor || frag < p.minFragmentation) return false;
    // A quiet process pays nothing for a trim: it need not wait for the interval (trims under
    // load that were undone lengthen the interval, not this). One per burst, by construction.
    const scale = limitScale(s.limit);
    const interval =
      scale === 1 ? this.intervalMs : Math.min(this.intervalMs, Math.max(1000, this.intervalMs * scale));
    if (reason !== 'quiet' && now - this.lastTrimAt < interval) return false;
    // Not in the middle of the JS thread's work, unless the cgroup limit is near.
    if (reason !== 'quiet' && scale === 1 && p.maxBusy < 1 && (s.busyShare ?? 0) > p.maxBusy) {
      this.busySkips++;
      return false;
    }
    // Arena tops a trim could not release yet are there for the next quiet one to take.
    if (reason === 'quiet' && this.pendingArenas > 0) return true;
    const u = unexplained(s);
    if (u === null) return false;
    const growth = p.minGrowthBytes === null ? floor / 2 : p.minGrowthBytes * scale;
    return this.baseline === null || u - this.baseline >= growth;
  }

  /** Records a trim that ran after sample `s`. */
  trimmed(
    s: PolicySample,
    result: TrimResult,
    now: number = performance.now(),
    reason: TrimReason = 'interval',
  ): void {
    this.lastTrimAt = now;
    this.pendingArenas = result.threadArenasPending ?? 0;
    const u = unexplained(s);
    // What was left unexplained once the trim had run: the next trim waits for growth beyond it.
    this.baseline =
      result.rssAfterBytes !== null && u !== null ? u - (s.rssBytes! - result.rssAfterBytes) : u;
    const released = result.releasedBytes ?? 0;
    const quiet = reason === 'quiet';
    if (released < this.options.minReleasedBytes) {
      this.grow(quiet);
      this.pending = null;
    } else {
      if (quiet) this.quietBackoff = 1;
      else this.backoff = 1;
      this.pending = { faults: minorFaults(), releasedPages: released / PAGE, quiet };
    }
  }

  private judgeLastTrim(): void {
    const t = this.pending;
    if (t === null) return;
    this.pending = null;
    if (minorFaults() - t.faults >= this.options.maxRefaultRatio * t.releasedPages) {
      this.undone++;
      this.grow(t.quiet);
    }
  }

  private grow(quiet: boolean): void {
    if (quiet) this.quietBackoff = Math.min(this.quietBackoff * 2, this.options.maxBackoff);
    else this.backoff = Math.min(this.backoff * 2, this.options.maxBackoff);
  }
}
