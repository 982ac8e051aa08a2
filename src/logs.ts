// A flat, log-friendly view of a snapshot: plain keys and numbers that pino, winston or any JSON
// logger print well, plus one human-readable line.
import { formatBytes } from './format';
import type { Snapshot } from './types';
import { checkSnapshot } from './validate';

/** The snapshot's own figures, as the snapshot documents them. */
type LoggedFigures = Pick<
  Snapshot,
  'rssBytes' | 'allocatedBytes' | 'freeBytes' | 'heapBytes' | 'largestFreeBytes' | 'arenas'
>;

export interface LogFields extends LoggedFigures {
  allocator: string;
  fragmentationRatio: number | null;
  externalRatio: number | null;
  rssRatio: number | null;
  /** e.g. "glibc rss 1.20 GiB, allocated 512 MiB, free 600 MiB (54% of heap)" */
  summary: string;
}

const size = (b: number | null) => (b === null ? 'n/a' : formatBytes(b));
const round = (r: number | null) => (r === null ? null : Math.round(r * 10000) / 10000);

/** Flattens a snapshot for a log line. Ratios are rounded to 4 decimals. */
export function toLogFields(s: Snapshot): LogFields {
  checkSnapshot('toLogFields(snapshot)', s);
  const frag = s.ratios.fragmentation;
  return {
    allocator: s.allocator,
    rssBytes: s.rssBytes,
    allocatedBytes: s.allocatedBytes,
    freeBytes: s.freeBytes,
    heapBytes: s.heapBytes,
    largestFreeBytes: s.largestFreeBytes,
    arenas: s.arenas,
    fragmentationRatio: round(frag),
    externalRatio: round(s.ratios.external),
    rssRatio: round(s.ratios.rss),
    summary:
      `${s.allocator} rss ${size(s.rssBytes)}, allocated ${size(s.allocatedBytes)}, free ${size(s.freeBytes)}` +
      (frag === null ? '' : ` (${(frag * 100).toFixed(0)}% of heap)`),
  };
}
