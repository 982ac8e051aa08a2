// The process's cgroup memory limits, usage, events and pressure (cgroup v2 or v1), read from the
// cgroup filesystem. A low room with no N-API: plain file reads, importable by any floor above.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { checkKeys, checkOptions, describe } from '../base/validate';

export interface CgroupMemoryOptions {
  /**
   * The mount of the memory controller to read instead of the one /proc/self/mountinfo names (a
   * fake tree in tests): a cgroup2 mount, or a v1 memory hierarchy, told apart by the files at its
   * top (memory.limit_in_bytes: v1).
   */
  root?: string;
  /**
   * The cgroup's path under the mount, e.g. `/app.slice/web.service`; default: the memory
   * controller's line of /proc/self/cgroup (`N:memory:/...` on v1, `0::/...` on v2).
   */
  path?: string;
}

/** PSI averages (percent of wall time some or all tasks stalled on memory) and the total stall in microseconds. */
export interface PressureFigures {
  avg10: number;
  avg60: number;
  avg300: number;
  totalUs: number;
}

/**
 * What the memory controller reports for this process's cgroup, v2 or v1. v1 has no memory.high
 * and no PSI: there highBytes, highHeadroomBytes and pressure are null (the soft limit, which only
 * orders reclaim under the machine's own memory pressure, is softLimitBytes, not highBytes).
 */
export interface CgroupMemory {
  /** The cgroup version the memory controller is on: 2 (unified) or 1 (the v1 memory hierarchy). */
  version: 1 | 2;
  /** The cgroup's path in the hierarchy (`/` at the root or inside a cgroup namespace). */
  path: string;
  /** The directory read. */
  directory: string;
  /**
   * The hard limit in bytes, lowest along the cgroup and its ancestors (v2 memory.max; v1
   * memory.limit_in_bytes and memory.stat's hierarchical_memory_limit); null when none is set.
   */
  maxBytes: number | null;
  /** memory.high in bytes (throttling and reclaim start here), lowest along the ancestors; null when none, and on v1. */
  highBytes: number | null;
  /**
   * Bytes charged to the cgroup, page cache included (v2 memory.current, v1 memory.usage_in_bytes);
   * null when unreadable (the v2 root cgroup has none).
   */
  currentBytes: number | null;
  /** maxBytes - currentBytes; null without a limit. Negative when over it. */
  headroomBytes: number | null;
  /** highBytes - currentBytes; null without memory.high. */
  highHeadroomBytes: number | null;
  /**
   * From memory.stat, the cgroup and its descendants: anonymous memory (the native and V8 heaps;
   * v1 total_rss) and file-backed memory (page cache, tmpfs, code; v1 total_cache).
   */
  anonBytes: number | null;
  fileBytes: number | null;
  /** The highest currentBytes seen (v2 memory.peak, kernel 5.19+; v1 memory.max_usage_in_bytes); null where unreadable. */
  peakBytes: number | null;
  /** v1 memory.soft_limit_in_bytes; null when none is set, and on v2. */
  softLimitBytes: number | null;
  /** v1 memory.oom_control's under_oom (tasks wait for the OOM killer); null on v2. */
  underOom: boolean | null;
  /**
   * Event counters since the cgroup was created; null when unreadable. v2: memory.events. v1:
   * `max` is memory.failcnt (times the limit was hit), `oomKill` oom_control's oom_kill (kernel
   * 4.13+); v1 counts no `low`, `high` or `oom` events: null there.
   */
  events: {
    low: number | null;
    high: number | null;
    max: number | null;
    oom: number | null;
    oomKill: number | null;
  } | null;
  /** memory.pressure (PSI); null when unreadable (kernel without PSI, and always on v1). */
  pressure: { some: PressureFigures; full: PressureFigures | null } | null;
}

function read(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

/** A memory.max / memory.high value: bytes, or null for "max". */
function limit(text: string | null): number | null | undefined {
  if (text === null) return undefined;
  const t = text.trim();
  if (t === 'max') return null;
  const n = Number(t);
  return Number.isFinite(n) ? n : undefined;
}

function number(text: string | null): number | null {
  if (text === null || text.trim() === '') return null;
  const n = Number(text.trim());
  return Number.isFinite(n) ? n : null;
}

function keyed(text: string | null): Map<string, number> | null {
  if (text === null) return null;
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && Number.isFinite(Number(v))) out.set(k, Number(v));
  }
  return out;
}

function pressureLine(text: string, kind: 'some' | 'full'): PressureFigures | null {
  const line = text.split('\n').find((l) => l.startsWith(`${kind} `));
  if (!line) return null;
  const f: Record<string, number> = {};
  for (const part of line
    .slice(kind.length + 1)
    .trim()
    .split(/\s+/)) {
    const [k, v] = part.split('=');
    f[k] = Number(v);
  }
  if (![f.avg10, f.avg60, f.avg300, f.total].every(Number.isFinite)) return null;
  return { avg10: f.avg10, avg60: f.avg60, avg300: f.avg300, totalUs: f.total };
}

/** The memory controller's line of /proc/self/cgroup: v1 (`N:...memory...:/path`), else v2 (`0::/path`). */
function selfPaths(): { v1: string | null; v2: string | null } {
  const out = { v1: null as string | null, v2: null as string | null };
  for (const line of read('/proc/self/cgroup')?.split('\n') ?? []) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    if (m[1] === '0' && m[2] === '') out.v2 = m[3];
    else if (m[2].split(',').includes('memory')) out.v1 = m[3];
  }
  return out;
}

interface Mount {
  mountPoint: string;
  /** The hierarchy path the mount shows (not `/` inside a cgroup namespace or a container). */
  mountRoot: string;
}

/**
 * The cgroup mounts of /proc/self/mountinfo: the cgroup2 mounts, or (v1) the cgroup mounts whose
 * super options name the memory controller. Where the same hierarchy is mounted more than once,
 * the first mount whose root holds `cgPath` wins.
 */
function findMount(version: 1 | 2, cgPath: string): Mount | null {
  const text = read('/proc/self/mountinfo');
  if (text === null) return null;
  const unescape = (s: string) =>
    s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  const found: Mount[] = [];
  for (const line of text.split('\n')) {
    // id parent major:minor root mount-point options [optional...] - fstype source super-options
    const [left, right] = line.split(' - ');
    if (!right) continue;
    const [fstype, , superOptions = ''] = right.split(' ');
    if (
      version === 2
        ? fstype !== 'cgroup2'
        : fstype !== 'cgroup' || !superOptions.split(',').includes('memory')
    )
      continue;
    const fields = left.split(' ');
    found.push({ mountRoot: unescape(fields[3]), mountPoint: unescape(fields[4]) });
  }
  return found.find((m) => within(cgPath, m.mountRoot)) ?? found[0] ?? null;
}

function within(cgPath: string, mountRoot: string): boolean {
  return mountRoot === '/' || cgPath === mountRoot || cgPath.startsWith(`${mountRoot}/`);
}

/**
 * Checks cgroupMemory()'s options (`where` names the call in errors, `name` the object): an object
 * with at most `root` and `path`, each a non-empty string.
 */
export function checkCgroupOptions(where: string, name: string, options: unknown): CgroupMemoryOptions {
  const o = checkOptions(where, options);
  checkKeys(where, o, ['root', 'path']);
  for (const key of ['root', 'path'] as const) {
    if (o[key] !== undefined && (typeof o[key] !== 'string' || o[key] === '')) {
      throw new TypeError(`Expected a non-empty string for ${name}.${key} but received ${describe(o[key])}`);
    }
  }
  return o as CgroupMemoryOptions;
}

/**
 * The memory limits, usage, events and pressure of this process's cgroup, from the memory
 * controller wherever it is: the cgroup v2 unified hierarchy, or the v1 memory hierarchy (a v1 or
 * hybrid system; see `version`). Synchronous: it reads about eight small files of /proc and the
 * cgroup filesystem (tens of microseconds on bare metal, 370 us measured on a VM whose system
 * calls are slow). Returns null where no memory controller is mounted (or no /proc). Limits set on
 * an ancestor count: the lowest limit from the cgroup up to the mount is reported (v1: also the
 * kernel's hierarchical_memory_limit, which sees ancestors above a container's mount).
 * @throws TypeError for bad options.
 */
export function cgroupMemory(options?: CgroupMemoryOptions): CgroupMemory | null {
  const o = checkCgroupOptions('cgroupMemory(options)', 'options', options);
  const self = o.path === undefined ? selfPaths() : null;
  let mountPoint: string;
  let relative: string;
  let cgPath: string;
  let version: 1 | 2;
  if (o.root !== undefined) {
    mountPoint = o.root;
    // A tree given by hand is v1 when its top has v1's files.
    version = read(path.join(mountPoint, 'memory.limit_in_bytes')) !== null ? 1 : 2;
    const p = o.path ?? (version === 1 ? self!.v1 : self!.v2);
    if (p === null) return null;
    cgPath = relative = p;
  } else {
    // v1 where the memory controller is bound to a v1 hierarchy that is mounted, else v2.
    const v1 = o.path ?? self!.v1;
    const v1Mount = v1 === null ? null : findMount(1, v1);
    const v2 = o.path ?? self!.v2;
    const v2Mount = v1Mount === null && v2 !== null ? findMount(2, v2) : null;
    const mount = v1Mount ?? v2Mount;
    if (mount === null) return null;
    version = v1Mount ? 1 : 2;
    cgPath = (v1Mount ? v1 : v2)!;
    mountPoint = mount.mountPoint;
    // Inside a cgroup namespace or a container the path is relative to the mount's root.
    relative =
      mount.mountRoot !== '/' && within(cgPath, mount.mountRoot)
        ? cgPath.slice(mount.mountRoot.length) || '/'
        : cgPath;
  }
  const directory = path.join(mountPoint, relative);
  return version === 1 ? readV1(cgPath, mountPoint, directory) : readV2(cgPath, mountPoint, directory);
}

// The directories from `directory` up to the mount, cgroup first.
function upToMount(mountPoint: string, directory: string): string[] {
  const dirs: string[] = [];
  const top = path.resolve(mountPoint);
  for (let dir = path.resolve(directory); ; dir = path.dirname(dir)) {
    dirs.push(dir);
    if (dir === top || dir === path.dirname(dir)) break;
  }
  return dirs;
}

const lowest = (a: number | null, b: number | null | undefined) =>
  typeof b !== 'number' ? a : a === null ? b : Math.min(a, b);

function readV2(cgPath: string, mountPoint: string, directory: string): CgroupMemory | null {
  const file = (name: string) => read(path.join(directory, name));
  if (file('cgroup.controllers') === null && file('memory.current') === null) return null;

  // The tightest limits along the cgroup and its ancestors, up to the mount.
  let maxBytes: number | null = null;
  let highBytes: number | null = null;
  for (const dir of upToMount(mountPoint, directory)) {
    maxBytes = lowest(maxBytes, limit(read(path.join(dir, 'memory.max'))));
    highBytes = lowest(highBytes, limit(read(path.join(dir, 'memory.high'))));
  }

  const currentBytes = number(file('memory.current'));
  const stat = keyed(file('memory.stat'));
  const ev = keyed(file('memory.events'));
  const pressureText = file('memory.pressure');
  const some = pressureText === null ? null : pressureLine(pressureText, 'some');
  return {
    version: 2,
    path: cgPath,
    directory,
    maxBytes,
    highBytes,
    currentBytes,
    headroomBytes: maxBytes !== null && currentBytes !== null ? maxBytes - currentBytes : null,
    highHeadroomBytes: highBytes !== null && currentBytes !== null ? highBytes - currentBytes : null,
    anonBytes: stat?.get('anon') ?? null,
    fileBytes: stat?.get('file') ?? null,
    peakBytes: number(file('memory.peak')),
    softLimitBytes: null,
    underOom: null,
    events: ev && {
      low: ev.get('low') ?? 0,
      high: ev.get('high') ?? 0,
      max: ev.get('max') ?? 0,
      oom: ev.get('oom') ?? 0,
      oomKill: ev.get('oom_kill') ?? 0,
    },
    pressure: some && { some, full: pressureLine(pressureText!, 'full') },
  };
}

// v1 writes "no limit" as the largest page-aligned counter (9223372036854771712 with 4 KiB
// pages, less with larger pages): anything this large is no limit.
const V1_UNLIMITED = 2 ** 60;

function v1Limit(text: string | null | undefined): number | null | undefined {
  const n = typeof text === 'string' ? number(text) : null;
  if (n === null) return undefined;
  return n >= V1_UNLIMITED ? null : n;
}

function readV1(cgPath: string, mountPoint: string, directory: string): CgroupMemory | null {
  const file = (name: string) => read(path.join(directory, name));
  const usage = file('memory.usage_in_bytes');
  if (usage === null) return null;
  const stat = keyed(file('memory.stat'));
  // The kernel's own hierarchical limit sees ancestors above the mount (a container's view).
  const hierarchical = stat?.get('hierarchical_memory_limit');
  let maxBytes = lowest(null, hierarchical === undefined ? undefined : v1Limit(String(hierarchical)));
  for (const dir of upToMount(mountPoint, directory)) {
    maxBytes = lowest(maxBytes, v1Limit(read(path.join(dir, 'memory.limit_in_bytes'))));
  }
  const currentBytes = number(usage);
  const oom = keyed(file('memory.oom_control'));
  const failcnt = number(file('memory.failcnt'));
  // total_* count the cgroup and its descendants, as v2's memory.stat does; rss and cache alone
  // only the cgroup's own tasks.
  const stat1 = (key: string) => stat?.get(`total_${key}`) ?? stat?.get(key) ?? null;
  return {
    version: 1,
    path: cgPath,
    directory,
    maxBytes,
    highBytes: null,
    currentBytes,
    headroomBytes: maxBytes !== null && currentBytes !== null ? maxBytes - currentBytes : null,
    highHeadroomBytes: null,
    anonBytes: stat1('rss'),
    fileBytes: stat1('cache'),
    peakBytes: number(file('memory.max_usage_in_bytes')),
    softLimitBytes: v1Limit(file('memory.soft_limit_in_bytes')) ?? null,
    underOom: oom?.has('under_oom') ? oom.get('under_oom') === 1 : null,
    events:
      failcnt === null && !oom?.has('oom_kill')
        ? null
        : { low: null, high: null, max: failcnt, oom: null, oomKill: oom?.get('oom_kill') ?? null },
    pressure: null,
  };
}
