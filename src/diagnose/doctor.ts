// Findings a person can act on, from a snapshot (and, optionally, a monitor's history).
import { getHeapStatistics } from 'node:v8';
import { snapshot } from '../read/core';
import { jemallocCommand } from '../read/libraries';
import { readAnonymousRss } from '../read/smaps';
import { tunables, type Tunables } from '../cure/tunables';
import { rules, type Finding, type Severity } from './doctor-rules';

export { doctorThresholds, type Finding, type Severity } from './doctor-rules';

export { jemallocCommand };
import type { Snapshot } from '../base/types';
import { checkKeys, checkNumber, checkOptions, checkSnapshot, describe } from '../base/validate';

/** What the doctor reads of a monitor's stats (monitor.stats() gives it). */
export interface DoctorStats {
  /** Highest RSS the monitor has seen, bytes. */
  peakRssBytes: number | null;
}

export interface DoctorOptions {
  /** Peaks from a running monitor (monitor.stats()), for the peak rule. */
  stats?: DoctorStats;
  /**
   * V8's physical heap size, bytes, subtracted from RSS before comparing it with malloc's live
   * bytes (JS objects live in V8's own pages, not in malloc). Default: v8.getHeapStatistics().
   */
  v8HeapBytes?: number;
  /**
   * The process's anonymous resident memory, bytes (RssAnon of /proc/<pid>/status), which
   * rss-above-allocated compares with malloc's live bytes: code and mapped files are resident
   * too, but no allocator holds them. Default: this process's own, read now, when the doctor takes
   * its snapshot itself; else unknown (null), and RSS is used instead. Pass
   * fragstat.anonymousRssBytes() with a snapshot of this process taken just before.
   */
  anonymousRssBytes?: number | null;
}

/** options.stats: undefined, or an object whose peakRssBytes is a number or null (monitor.stats()). */
function checkStats(value: unknown): DoctorStats | undefined {
  if (value === undefined) return undefined;
  const peak = (value as { peakRssBytes?: unknown } | null)?.peakRssBytes;
  if (
    value === null ||
    typeof value !== 'object' ||
    !(peak === null || (typeof peak === 'number' && peak >= 0))
  ) {
    throw new TypeError(
      `Expected monitor.stats() (an object with peakRssBytes, a number of bytes or null) for options.stats but received ${describe(value)}` +
        (value !== null && typeof value === 'object' ? ` with peakRssBytes ${describe(peak)}` : ''),
    );
  }
  return value as DoctorStats;
}

/**
 * Looks at a snapshot (a fresh one with `detail: true` when none is given) and returns findings,
 * worst first. An empty array means nothing worth acting on.
 */
export function doctor(snap?: Snapshot, options?: DoctorOptions): Finding[] {
  if (snap !== undefined) checkSnapshot('doctor(snapshot)', snap);
  const o = checkOptions('doctor(snapshot, options)', options);
  checkKeys('doctor(snapshot, options)', o, ['stats', 'v8HeapBytes', 'anonymousRssBytes']);
  const v8Heap = checkNumber(
    'options.v8HeapBytes',
    o.v8HeapBytes,
    getHeapStatistics().total_physical_size,
    0,
    Number.MAX_SAFE_INTEGER,
  );
  const stats = checkStats(o.stats);
  const s = snap ?? snapshot({ detail: true });
  const anon =
    o.anonymousRssBytes === null
      ? null
      : o.anonymousRssBytes !== undefined
        ? checkNumber('options.anonymousRssBytes', o.anonymousRssBytes, 0, 0, Number.MAX_SAFE_INTEGER)
        : snap === undefined
          ? readAnonymousRss()
          : null;
  // What is set already, so that no advice asks for it again: read only when a rule that needs
  // it fires (tunables() costs a few hundred microseconds).
  let read: Tunables['settings'] | null = null;
  const settings = (): Tunables['settings'] => {
    if (read === null) {
      try {
        read = tunables().settings;
      } catch {
        read = {}; // advice without the settings in view
      }
    }
    return read;
  };
  const findings = rules.flatMap((rule) =>
    rule({
      snapshot: s,
      v8HeapBytes: v8Heap,
      peakRssBytes: stats?.peakRssBytes ?? null,
      anonymousRssBytes: anon,
      settings,
    }),
  );
  const rank: Record<Severity, number> = { critical: 0, warn: 1, info: 2 };
  return findings.sort((x, y) => rank[x.severity] - rank[y.severity]);
}
