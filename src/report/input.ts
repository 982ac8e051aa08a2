// What the HTML report is given: samples, breakdowns, trims, the verdict and the findings, as
// plain data (a live run, a recording or a test's made-up input all fit).

/** A sample as the monitor writes it (a Snapshot), reduced to what the report reads. */
export interface ReportSample {
  timestamp: number;
  rssBytes: number | null;
  allocatedBytes?: number | null;
  freeBytes?: number | null;
  heapBytes?: number | null;
  /** Free memory the allocator holds in RAM, where the sample has it. */
  residentFreeBytes?: number | null;
  /** V8's resident heap (total_physical_size), where the sample has it. */
  v8HeapBytes?: number | null;
  ratios?: { fragmentation?: number | null } | null;
}

/** The names of the breakdown's parts, in stacking order (bottom first). */
export const breakdownParts = [
  'v8Heap',
  'mallocLive',
  'mallocFreeResident',
  'allocatorOverhead',
  'code',
  'stacks',
  'other',
] as const;
export type BreakdownPart = (typeof breakdownParts)[number];

/** RSS split into parts that sum to it (fragstat's breakdown()). */
export interface ReportBreakdown {
  timestamp: number;
  rssBytes: number;
  parts: Record<BreakdownPart, number>;
  /** Parts that are estimates under this allocator. */
  partial?: string[];
}

export interface ReportTrim {
  timestamp: number;
  releasedBytes: number | null;
  rssBeforeBytes?: number | null;
  rssAfterBytes?: number | null;
  durationMs?: number | null;
}

export interface ReportVerdict {
  kind: string;
  title: string;
  advice: string;
  /** low, medium or high (verdict()'s confidence); absent in older recordings. */
  confidence?: string;
  /** How much longer to sample for a firmer verdict, ms, or null. */
  waitMs?: number | null;
  /** The evidence in sentences, with units. */
  because?: string[];
  evidence: Record<string, number>;
}

export interface ReportFinding {
  id: string;
  severity: string;
  title: string;
  advice: string;
  numbers: Record<string, number>;
}

export interface ReportInput {
  /** The command that ran, as argv. */
  command?: string[] | null;
  pid?: number | null;
  allocator?: string | null;
  samples: ReportSample[];
  breakdowns?: ReportBreakdown[];
  trims?: ReportTrim[];
  /** The verdict, or why there is none. */
  verdict?: ReportVerdict | { unavailable: string } | null;
  findings?: ReportFinding[] | null;
  /** Where the findings come from, in words (shown under them). */
  findingsNote?: string | null;
  /** Name/value pairs: allocator version, Node version, tunables in the environment. */
  environment?: Record<string, string> | null;
  /** How the process stands: "exited with code 0", "running (report taken on demand)", ... */
  status?: string | null;
  /** When the report was written, ms since the epoch. */
  generatedAt: number;
}
