// A flat, log-friendly view of a snapshot: plain keys and numbers that pino, winston or any JSON
// logger print well, plus one human-readable line.
import type { Breakdown, BreakdownParts } from '../read/breakdown';
import { formatBytes } from '../base/format';
import type { Snapshot } from '../base/types';
import { checkKeys, checkOptions, checkSnapshot, describe } from '../base/validate';
import type { Verdict } from '../diagnose/verdict';

/** The snapshot's own figures, as the snapshot documents them. */
type LoggedFigures = Pick<
  Snapshot,
  | 'rssBytes'
  | 'allocatedBytes'
  | 'freeBytes'
  | 'residentFreeBytes'
  | 'heapBytes'
  | 'largestFreeBytes'
  | 'arenas'
>;

export interface LogFields extends LoggedFigures {
  allocator: string;
  fragmentationRatio: number | null;
  externalRatio: number | null;
  rssRatio: number | null;
  /** RSS by owner, bytes, when a breakdown was passed. */
  rssParts?: BreakdownParts;
  /** The verdict's kind, when one was passed. */
  verdict?: Verdict['kind'];
  /** e.g. "glibc rss 1.20 GiB, allocated 512 MiB, free 600 MiB (54% of heap)" */
  summary: string;
}

const size = (b: number | null) => (b === null ? 'n/a' : formatBytes(b));
const round = (r: number | null) => (r === null ? null : Math.round(r * 10000) / 10000);

/** What toLogFields() adds besides the snapshot. */
export interface LogExtras {
  /** A breakdown (breakdown() / breakdownAsync()): its parts become `rssParts`. */
  breakdown?: Breakdown;
  /** A verdict (monitor.verdict()): its kind becomes `verdict`. */
  verdict?: Verdict;
}

/** Flattens a snapshot (and optionally a breakdown and a verdict) for a log line. Ratios are rounded to 4 decimals. */
export function toLogFields(s: Snapshot, extras?: LogExtras): LogFields {
  checkSnapshot('toLogFields(snapshot)', s);
  const x = checkOptions('toLogFields(snapshot, extras)', extras);
  checkKeys('toLogFields(snapshot, extras)', x, ['breakdown', 'verdict']);
  const b = x.breakdown as Breakdown | undefined;
  const v = x.verdict as Verdict | undefined;
  if (
    b !== undefined &&
    (b === null || typeof b !== 'object' || typeof b.parts !== 'object' || b.parts === null)
  ) {
    throw new TypeError(`Expected a Breakdown for extras.breakdown but received ${describe(b)}`);
  }
  if (v !== undefined && (v === null || typeof v !== 'object' || typeof v.kind !== 'string')) {
    throw new TypeError(`Expected a Verdict for extras.verdict but received ${describe(v)}`);
  }
  const frag = s.ratios.fragmentation;
  return {
    allocator: s.allocator,
    rssBytes: s.rssBytes,
    allocatedBytes: s.allocatedBytes,
    freeBytes: s.freeBytes,
    residentFreeBytes: s.residentFreeBytes ?? null,
    heapBytes: s.heapBytes,
    largestFreeBytes: s.largestFreeBytes,
    arenas: s.arenas,
    fragmentationRatio: round(frag),
    externalRatio: round(s.ratios.external),
    rssRatio: round(s.ratios.rss),
    ...(b ? { rssParts: { ...b.parts } } : {}),
    ...(v ? { verdict: v.kind } : {}),
    summary:
      `${s.allocator} rss ${size(s.rssBytes)}, allocated ${size(s.allocatedBytes)}, free ${size(s.freeBytes)}` +
      (frag === null ? '' : ` (${(frag * 100).toFixed(0)}% of heap)`) +
      (v ? `; ${v.kind}` : ''),
  };
}
