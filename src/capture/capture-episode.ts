// When a capture is taken: its options, the two levels it weighs (the cgroup's anonymous memory
// against its hard limit, V8's old generation against its limit), and the episode logic, a pure
// function. capture.ts writes the bundle.
import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';
import { cgroupMemory, checkCgroupOptions, type CgroupMemoryOptions } from '../read/cgroup';
import { checkKeys, checkNumber, checkOptions, describe } from '../base/validate';

/** Options of a monitor's capture (MonitorOptions.capture). */
export interface CaptureOptions {
  /** The directory bundles are written in (made if missing); each bundle is a directory of its own. */
  dir: string;
  /** Capture when less than this share of the cgroup's hard limit is left. Default 0.1. 0 to 1. */
  cgroupShare?: number;
  /** Capture when less than this share of V8's old-generation limit is left (see heapLevel). Default 0.1. 0 to 1. */
  heapShare?: number;
  /**
   * Another capture only after usage has fallen below this share of both limits. Default 0.8.
   * Below 1 - cgroupShare and 1 - heapShare.
   */
  rearmShare?: number;
  /** The cgroup to watch: true (default) the process's own, `{ root, path }` another tree, false none. */
  cgroup?: boolean | CgroupMemoryOptions;
}

/** CaptureOptions with every default filled in. */
export interface CaptureSettings {
  dir: string;
  cgroupShare: number;
  heapShare: number;
  rearmShare: number;
  cgroup: CgroupMemoryOptions | null;
}

/** Checks MonitorOptions.capture: null when absent. @throws TypeError, RangeError for bad options. */
export function readCaptureOptions(value: unknown): CaptureSettings | null {
  if (value === undefined) return null;
  const o = checkOptions('options.capture', value);
  checkKeys('options.capture', o, ['dir', 'cgroupShare', 'heapShare', 'rearmShare', 'cgroup']);
  if (typeof o.dir !== 'string' || o.dir === '') {
    throw new TypeError(
      `Expected a non-empty string for options.capture.dir but received ${describe(o.dir)}`,
    );
  }
  const cgroupShare = checkNumber('options.capture.cgroupShare', o.cgroupShare, 0.1, 0, 1);
  const heapShare = checkNumber('options.capture.heapShare', o.heapShare, 0.1, 0, 1);
  const rearmShare = checkNumber(
    'options.capture.rearmShare',
    o.rearmShare,
    Math.min(0.8, 1 - cgroupShare, 1 - heapShare),
    0,
    Math.min(1 - cgroupShare, 1 - heapShare),
  );
  let cgroup: CgroupMemoryOptions | null;
  if (o.cgroup === undefined || o.cgroup === true) cgroup = {};
  else if (o.cgroup === false) cgroup = null;
  else if (typeof o.cgroup === 'object' && o.cgroup !== null) {
    cgroup = checkCgroupOptions('options.capture.cgroup', 'options.capture.cgroup', o.cgroup);
  } else {
    throw new TypeError(
      `Expected a boolean or an object for options.capture.cgroup but received ${describe(o.cgroup)}`,
    );
  }
  return { dir: o.dir, cgroupShare, heapShare, rearmShare, cgroup };
}

/** One limit and what is used of it, bytes. */
export interface Level {
  usedBytes: number;
  limitBytes: number;
}

/** What a capture weighs: the cgroup's (null without a limit) and V8's heap. */
export interface CaptureLevels {
  cgroup: Level | null;
  heap: Level | null;
}

/** Why a capture was taken: near the cgroup's limit, or near V8's heap limit. */
export type CaptureReason = 'cgroup' | 'heap';

/**
 * The episode logic, pure: armed, a capture fires when less than `cgroupShare` of the cgroup's
 * limit or `heapShare` of V8's heap limit is left, and disarms; disarmed, it re-arms only once
 * every level has fallen below `rearmShare` of its limit. One capture per episode.
 */
export function captureEpisode(
  armed: boolean,
  levels: CaptureLevels,
  o: Pick<CaptureSettings, 'cgroupShare' | 'heapShare' | 'rearmShare'>,
): { armed: boolean; fire: CaptureReason | null } {
  const left = (l: Level | null) => (l && l.limitBytes > 0 ? (l.limitBytes - l.usedBytes) / l.limitBytes : 1);
  const used = (l: Level | null) => (l && l.limitBytes > 0 ? l.usedBytes / l.limitBytes : 0);
  if (armed) {
    if (levels.cgroup && left(levels.cgroup) < o.cgroupShare) return { armed: false, fire: 'cgroup' };
    if (levels.heap && left(levels.heap) < o.heapShare) return { armed: false, fire: 'heap' };
    return { armed: true, fire: null };
  }
  return {
    armed: used(levels.cgroup) < o.rearmShare && used(levels.heap) < o.rearmShare,
    fire: null,
  };
}

/**
 * The cgroup's level: its anonymous memory (what no reclaim can free without swap; page cache is
 * dropped before the OOM killer runs) against its hard limit. Falls back to all that is charged
 * where memory.stat is unreadable. Null without a limit.
 */
export function cgroupLevel(where: CgroupMemoryOptions | null): Level | null {
  if (where === null) return null;
  const c = cgroupMemory(where);
  if (!c || c.maxBytes === null) return null;
  const used = c.anonBytes ?? c.currentBytes;
  return used === null ? null : { usedBytes: used, limitBytes: c.maxBytes };
}

/**
 * The young generation's share of heap_size_limit, bytes: three semi-spaces of
 * --max-semi-space-size (from node's flags or NODE_OPTIONS), else of V8's largest default (16 MiB
 * on 64-bit). Where V8 chose smaller semi-spaces (a small default heap) this is more than the
 * reserve, and the old generation's limit is taken lower than it is: a capture comes early.
 */
function youngReserveBytes(): number {
  const flags = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  let semiMiB = process.arch.includes('64') ? 16 : 8;
  for (const f of flags) {
    const m = /^--max[-_]semi[-_]space[-_]size=(\d+)$/.exec(f);
    if (m) semiMiB = Number(m[1]);
  }
  return 3 * semiMiB * 1024 * 1024;
}

/**
 * V8's level: the old generation's committed bytes (its spaces' space_size, which is what reaches
 * the limit when V8 fails with "JavaScript heap out of memory") against heap_size_limit less the
 * young generation's reserve.
 */
export function heapLevel(): Level {
  const limit = getHeapStatistics().heap_size_limit;
  let old = 0;
  for (const s of getHeapSpaceStatistics()) if (!/^new_/.test(s.space_name)) old += s.space_size;
  return { usedBytes: old, limitBytes: Math.max(limit - youngReserveBytes(), limit / 4) };
}
