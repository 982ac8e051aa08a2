// The figures of a snapshot that metrics exporters publish, defined once: Prometheus and
// OpenTelemetry differ only in how they spell names and units.
import { snapshot } from './core';
import type { Snapshot } from '../base/types';

/**
 * One snapshot that tells an exporter which figures the running allocator (with or without
 * detail) can ever report. Null when that read fails: the exporter then registers every figure,
 * and those the allocator lacks stay empty.
 */
export function probeFigures(detail: boolean): Snapshot | null {
  try {
    return snapshot({ detail });
  } catch {
    return null;
  }
}

export interface Figure {
  /** Base name: Prometheus appends the unit suffix (`_bytes`, `_ratio`), OpenTelemetry does not. */
  id: string;
  help: string;
  unit: 'bytes' | 'ratio' | 'arenas';
  value: (s: Snapshot) => number | null;
}

export const figures: Figure[] = [
  {
    id: 'rss',
    help: 'Resident set size of the process (/proc/self/statm).',
    unit: 'bytes',
    value: (s) => s.rssBytes,
  },
  {
    id: 'allocated',
    help: 'Bytes in live allocations, as the allocator counts them.',
    unit: 'bytes',
    value: (s) => s.allocatedBytes,
  },
  {
    id: 'free',
    help: 'Bytes the allocator holds that serve no allocation.',
    unit: 'bytes',
    value: (s) => s.freeBytes,
  },
  {
    id: 'resident_free',
    help: 'Free memory the allocator holds in RAM (what a trim can win back); glibc needs detail.',
    unit: 'bytes',
    value: (s) => s.residentFreeBytes,
  },
  {
    id: 'heap',
    help: "The allocator's footprint (allocated + free).",
    unit: 'bytes',
    value: (s) => s.heapBytes,
  },
  { id: 'fragmentation', help: 'free / heap.', unit: 'ratio', value: (s) => s.ratios.fragmentation },
  {
    id: 'resident_fragmentation',
    help: 'resident_free / (allocated + resident_free).',
    unit: 'ratio',
    value: (s) => s.ratios.residentFragmentation,
  },
  {
    id: 'rss_to_allocated',
    help: "The allocator's RAM per live byte: (allocated + resident_free) / allocated.",
    unit: 'ratio',
    value: (s) => s.ratios.rss,
  },
  { id: 'arenas', help: 'Allocator arenas in use.', unit: 'arenas', value: (s) => s.arenas },
  {
    id: 'largest_free',
    help: 'Largest single free block (detail).',
    unit: 'bytes',
    value: (s) => s.largestFreeBytes,
  },
  {
    id: 'external_fragmentation',
    help: '1 - largest_free / free (detail).',
    unit: 'ratio',
    value: (s) => s.ratios.external,
  },
];
