// The process's cgroup v2 memory limits, usage, events and pressure, read from the cgroup
// filesystem. A low room with no N-API: plain file reads, importable by any floor above.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { checkKeys, checkOptions, describe } from '../base/validate';

export interface CgroupMemoryOptions {
  /** The cgroup2 mount to read instead of the one /proc/self/mountinfo names (a fake tree in tests). */
  root?: string;
  /** The cgroup's path under `root`, e.g. `/app.slice/web.service`; default: the `0::` line of /proc/self/cgroup. */
  path?: string;
}

/** PSI averages (percent of wall time some or all tasks stalled on memory) and the total stall in microseconds. */
export interface PressureFigures {
  avg10: number;
  avg60: number;
  avg300: number;
  totalUs: number;
}

/** What the cgroup v2 memory controller reports for this process's cgroup. */
export interface CgroupMemory {
  /** The cgroup's path in the hierarchy (`/` at the root or inside a cgroup namespace). */
  path: string;
  /** The directory read. */
  directory: string;
  /** memory.max in bytes: the lowest along the cgroup and its ancestors; null when none sets one ("max"). */
  maxBytes: number | null;
  /** memory.high in bytes (throttling and reclaim start here), lowest along the ancestors; null when none. */
  highBytes: number | null;
  /** memory.current: bytes charged to the cgroup, page cache included; null when unreadable (the root cgroup has none). */
  currentBytes: number | null;
  /** maxBytes - currentBytes; null without a limit. Negative when over it. */
  headroomBytes: number | null;
  /** highBytes - currentBytes; null without memory.high. */
  highHeadroomBytes: number | null;
  /** From memory.stat: anonymous memory (the native and V8 heaps) and file-backed memory (page cache, code). */
  anonBytes: number | null;
  fileBytes: number | null;
  /** memory.events counters since the cgroup was created; null when unreadable. */
  events: { low: number; high: number; max: number; oom: number; oomKill: number } | null;
  /** memory.pressure (PSI); null when unreadable (kernel without PSI). */
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

/** The process's cgroup v2 path (the `0::` line), or null on a v1-only system. */
function selfPath(): string | null {
  const text = read('/proc/self/cgroup');
  const line = text?.split('\n').find((l) => l.startsWith('0::'));
  return line ? line.slice(3) : null;
}

/** The cgroup2 mount point and the hierarchy path it shows, from /proc/self/mountinfo. */
function unifiedMount(): { mountPoint: string; mountRoot: string } | null {
  const text = read('/proc/self/mountinfo');
  if (text === null) return null;
  for (const line of text.split('\n')) {
    // id parent major:minor root mount-point options [optional...] - fstype source super-options
    const [left, right] = line.split(' - ');
    if (!right || right.split(' ')[0] !== 'cgroup2') continue;
    const fields = left.split(' ');
    const unescape = (s: string) =>
      s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    return { mountRoot: unescape(fields[3]), mountPoint: unescape(fields[4]) };
  }
  return null;
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
 * The memory limits, usage, events and pressure of this process's cgroup (v2). Synchronous: it
 * reads about eight small files of /proc and the cgroup filesystem (tens of microseconds on bare
 * metal, 370 us measured on a VM whose system calls are slow). Returns null when the
 * process is not under a cgroup v2 hierarchy (a v1-only or hybrid system whose memory controller
 * is on v1, or no /proc). Limits set on an ancestor count: the lowest memory.max and memory.high
 * from the cgroup up to the mount are reported.
 * @throws TypeError for bad options.
 */
export function cgroupMemory(options?: CgroupMemoryOptions): CgroupMemory | null {
  const o = checkCgroupOptions('cgroupMemory(options)', 'options', options);
  let mountPoint: string;
  let relative: string;
  const cgPath = (o.path as string | undefined) ?? selfPath();
  if (cgPath === null) return null;
  if (o.root !== undefined) {
    mountPoint = o.root as string;
    relative = cgPath;
  } else {
    const mount = unifiedMount();
    if (mount === null) return null;
    mountPoint = mount.mountPoint;
    // Inside a cgroup namespace the mount's root is the namespace root and the path is relative to it.
    relative =
      mount.mountRoot !== '/' && (cgPath === mount.mountRoot || cgPath.startsWith(`${mount.mountRoot}/`))
        ? cgPath.slice(mount.mountRoot.length) || '/'
        : cgPath;
  }
  const directory = path.join(mountPoint, relative);
  const file = (name: string) => read(path.join(directory, name));
  if (read(path.join(directory, 'cgroup.controllers')) === null && file('memory.current') === null)
    return null;

  // The tightest limits along the cgroup and its ancestors, up to the mount.
  let maxBytes: number | null = null;
  let highBytes: number | null = null;
  const top = path.resolve(mountPoint);
  for (let dir = path.resolve(directory); ; dir = path.dirname(dir)) {
    const max = limit(read(path.join(dir, 'memory.max')));
    const high = limit(read(path.join(dir, 'memory.high')));
    if (typeof max === 'number') maxBytes = maxBytes === null ? max : Math.min(maxBytes, max);
    if (typeof high === 'number') highBytes = highBytes === null ? high : Math.min(highBytes, high);
    if (dir === top || dir === path.dirname(dir)) break;
  }

  const currentText = file('memory.current');
  const current = currentText === null ? NaN : Number(currentText.trim());
  const currentBytes = Number.isFinite(current) ? current : null;
  const stat = keyed(file('memory.stat'));
  const ev = keyed(file('memory.events'));
  const pressureText = file('memory.pressure');
  const some = pressureText === null ? null : pressureLine(pressureText, 'some');
  return {
    path: cgPath,
    directory,
    maxBytes,
    highBytes,
    currentBytes,
    headroomBytes: maxBytes !== null && currentBytes !== null ? maxBytes - currentBytes : null,
    highHeadroomBytes: highBytes !== null && currentBytes !== null ? highBytes - currentBytes : null,
    anonBytes: stat?.get('anon') ?? null,
    fileBytes: stat?.get('file') ?? null,
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
