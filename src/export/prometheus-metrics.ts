// The families of metrics registerPrometheus() adds, one function each: the snapshot's figures
// and counters, the RSS breakdown, a running monitor's verdict, the cgroup's limit and usage, and
// the allocator's name. Each registers its metrics in the registry once (metrics already there are
// kept) and reads only the shared, rate-limited readings, never the allocator itself per scrape.
import { cgroupMemory } from '../read/cgroup';
import { trimLog } from '../read/core';
import { v8ReleaseLog } from '../cure/v8heap';
import { figures, probeFigures } from '../read/figures';
import { monitorVerdict, sharedBreakdown, sharedReading, type SharedReading } from '../monitor/reading';
import type { AllocatorInfo, Snapshot } from '../base/types';
import { verdictConfidenceLevels, verdictKinds, type Verdict } from '../diagnose/verdict';

/** The part of a prom-client Registry this module uses. */
export interface PromRegistry {
  getSingleMetric(name: string): unknown;
  registerMetric(metric: unknown): void;
  removeSingleMetric(name: string): void;
}

export interface PromClient {
  Gauge: new (config: object) => { set(labels: object, v: number): void; reset(): void };
  Counter: new (config: object) => { inc(labels: object, v: number): void; reset(): void };
}

/** What every family registers with: the registry, the client, the names so far. */
export interface Registrar {
  registry: PromRegistry;
  client: PromClient;
  prefix: string;
  detail: boolean;
  cacheMs: number;
  info: AllocatorInfo;
  /** Names of fragstat's metrics in the registry (registered now or earlier). */
  names: string[];
  /** Names this registration added (what unregister() removes). */
  added: string[];
}

type Collect = (this: {
  set?(l: object, v: number): void;
  inc?(l: object, v: number): void;
  reset(): void;
}) => unknown;

// Registers one metric unless the registry has it already.
function add(
  r: Registrar,
  kind: 'gauge' | 'counter',
  name: string,
  help: string,
  labelNames: string[],
  collect: Collect,
): void {
  r.names.push(name);
  if (r.registry.getSingleMetric(name)) return;
  const config = { name, help, labelNames, registers: [r.registry], collect };
  if (kind === 'counter') new r.client.Counter(config);
  else new r.client.Gauge(config);
  r.added.push(name);
}

interface Def {
  name: string;
  help: string;
  kind: 'gauge' | 'counter';
  value: ((s: Snapshot, r: SharedReading) => number | null) | ((errors: number) => number);
}

const suffix = { bytes: '_bytes', ratio: '_ratio', arenas: '' } as const;

const defs: Def[] = [
  ...figures.map((f): Def => ({ name: f.id + suffix[f.unit], help: f.help, kind: 'gauge', value: f.value })),
  {
    name: 'snapshot_duration_seconds',
    help: 'Time the last allocator read took.',
    kind: 'gauge',
    value: (s: Snapshot) => s.durationMs / 1000,
  },
  {
    name: 'reading_age_seconds',
    help: 'Age of the reading this scrape serves (a monitor sample, or a rate-limited reading).',
    kind: 'gauge',
    value: (_s: Snapshot, r: SharedReading) => r.ageMs / 1000,
  },
  {
    name: 'trims_total',
    help: 'Trims run in this process (this thread).',
    kind: 'counter',
    value: () => trimLog().count,
  },
  {
    name: 'trim_released_bytes_total',
    help: 'RSS released by those trims.',
    kind: 'counter',
    value: () => trimLog().releasedBytesTotal,
  },
  {
    name: 'v8_releases_total',
    help: "Releases of V8's idle heap in this thread (releaseV8Heap(), or auto-trim when the process went quiet).",
    kind: 'counter',
    value: () => v8ReleaseLog().count,
  },
  {
    name: 'v8_released_bytes_total',
    help: 'V8 heap pages those releases gave back.',
    kind: 'counter',
    value: () => v8ReleaseLog().releasedBytesTotal,
  },
  {
    name: 'v8_release_pause_seconds_total',
    help: 'Time the JS thread was held by those releases.',
    kind: 'counter',
    value: () => v8ReleaseLog().pauseSecondsTotal,
  },
  {
    name: 'snapshot_errors_total',
    help: 'Allocator reads for scrapes that failed; scrapes served by a failed read leave the gauges out.',
    kind: 'counter',
    value: (errors: number) => errors,
  },
];

/**
 * `read()` at most once per scrape and at most once per `cacheMs`: prom-client calls every
 * metric's collect() in one synchronous pass, so a value read in that pass serves the whole scrape
 * even when cacheMs is 0.
 */
function perScrape<T>(read: () => T, cacheMs: number): () => T {
  let entry: { at: number; value: T; thisPass: boolean } | null = null;
  return () => {
    const now = performance.now();
    if (entry === null || (!entry.thisPass && now - entry.at > cacheMs)) {
      const e = { at: now, value: read(), thisPass: true };
      queueMicrotask(() => (e.thisPass = false));
      entry = e;
    }
    return entry.value;
  };
}

/**
 * The snapshot's figures (those the running allocator has), the reading's cost and age, and the
 * trim and error counters. One reading serves every metric of a scrape: one still in flight is
 * shared, and a finished one is reused for cacheMs. Readings come from the shared, rate-limited
 * reading (monitor/reading.ts). A failed one (an allocator interface error) is counted once and
 * leaves the gauges out, rather than failing the whole registry's output, the application's own
 * metrics included.
 */
export function addFigures(r: Registrar): void {
  const { detail, cacheMs } = r;
  const labels = { allocator: r.info.name };
  let errors = 0;
  let cached: { at: number; done: boolean; promise: Promise<SharedReading | null> } | null = null;
  const current = (): Promise<SharedReading | null> => {
    const now = performance.now();
    if (!cached || (cached.done && now - cached.at > cacheMs)) {
      const entry = { at: now, done: false, promise: Promise.resolve<SharedReading | null>(null) };
      entry.promise = sharedReading(detail, cacheMs).then(
        (r) => {
          entry.done = true;
          return r;
        },
        (): null => {
          entry.done = true;
          errors++;
          return null;
        },
      );
      cached = entry;
    }
    return cached.promise;
  };
  // Figures the running allocator never has (mimalloc's live bytes, glibc's arenas without
  // detail, everything but RSS when nothing is known) are not registered at all: one snapshot
  // (with detail when asked) tells which.
  const probe = probeFigures(detail);
  for (const d of defs) {
    const available =
      d.kind === 'counter' ||
      probe === null ||
      (d.value as (s: Snapshot, r: SharedReading) => number | null)(probe, {
        snapshot: probe,
        source: 'fresh',
        ageMs: 0,
        minIntervalMs: 0,
      }) !== null;
    if (!available) continue;
    const value = d.value;
    add(r, d.kind, r.prefix + d.name, d.help, ['allocator'], async function (this) {
      if (d.kind === 'counter') {
        // Wait for this scrape's snapshot, so a failure in it is already counted; then reset
        // and set with no await between, or overlapping scrapes would add twice.
        await current();
        this.reset();
        this.inc!(labels, (value as (errors: number) => number)(errors));
        return;
      }
      const reading = await current();
      this.reset();
      if (reading === null) return;
      const v = (value as (s: Snapshot, r: SharedReading) => number | null)(reading.snapshot, reading);
      if (v !== null && Number.isFinite(v)) this.set!(labels, v);
    });
  }
}

/** RSS by owner: the breakdown's seven parts, from a breakdown taken at most once a minute. */
export function addBreakdown(r: Registrar): void {
  const labels = { allocator: r.info.name };
  add(
    r,
    'gauge',
    `${r.prefix}rss_part_bytes`,
    'Resident memory by owner (v8Heap, mallocLive, mallocFreeResident, allocatorOverhead, code, stacks, other); the parts add up to RSS. Refreshed at most once a minute.',
    ['allocator', 'part'],
    async function (this) {
      const b = await sharedBreakdown();
      this.reset();
      if (b === null) return;
      for (const [part, v] of Object.entries(b.breakdown.parts)) this.set!({ ...labels, part }, v);
    },
  );
}

/** A running monitor's verdict: its kind, its confidence as a number, its RSS growth. */
export function addVerdict(r: Registrar): void {
  const labels = { allocator: r.info.name };
  // The monitor computes its verdict over its whole history: one per scrape serves the three
  // verdict metrics (not cached beyond the scrape: a stopped monitor's verdict leaves at once).
  const verdictNow = perScrape<Verdict | null>(monitorVerdict, 0);
  add(
    r,
    'gauge',
    `${r.prefix}verdict`,
    "A running monitor's verdict on why RSS moves: 1 for the current kind, 0 for the others.",
    ['allocator', 'kind'],
    function (this) {
      const v = verdictNow();
      this.reset();
      if (v === null) return;
      for (const kind of verdictKinds) this.set!({ ...labels, kind }, kind === v.kind ? 1 : 0);
    },
  );
  const gauges: { name: string; help: string; value: (v: Verdict) => number | null }[] = [
    {
      name: `${r.prefix}verdict_confidence`,
      help: "How firm a running monitor's verdict is: 1 low, 2 medium, 3 high.",
      value: (v) => verdictConfidenceLevels[v.confidence],
    },
    {
      name: `${r.prefix}verdict_rss_growth_bytes_per_second`,
      help: "Growth of RSS's troughs over a running monitor's verdict window (negative when they fell); absent before the monitor has enough readings.",
      value: (v) => (v.evidence === null ? null : v.evidence.rssBytesPerHour / 3600),
    },
  ];
  for (const g of gauges) {
    add(r, 'gauge', g.name, g.help, ['allocator'], function (this) {
      const v = verdictNow();
      this.reset();
      const x = v === null ? null : g.value(v);
      if (x !== null && Number.isFinite(x)) this.set!(labels, x);
    });
  }
}

/**
 * The container's memory limit and usage, from one read of the cgroup filesystem per scrape
 * (cached for cacheMs), registered only when the cgroup reports the figure at registration.
 */
export function addCgroup(r: Registrar): void {
  const labels = { allocator: r.info.name };
  const cgroupNow = perScrape(() => {
    try {
      return cgroupMemory();
    } catch {
      return null;
    }
  }, r.cacheMs);
  const probe = cgroupNow();
  const gauges: { name: string; help: string; value: (c: NonNullable<typeof probe>) => number | null }[] = [
    {
      name: `${r.prefix}cgroup_memory_limit_bytes`,
      help: "The memory limit of the process's cgroup (the lowest along its ancestors).",
      value: (c) => c.maxBytes,
    },
    {
      name: `${r.prefix}cgroup_memory_usage_bytes`,
      help: "Memory charged to the process's cgroup, page cache included.",
      value: (c) => c.currentBytes,
    },
  ];
  for (const g of gauges) {
    if (probe === null || g.value(probe) === null) continue;
    add(r, 'gauge', g.name, g.help, ['allocator'], function (this) {
      const c = cgroupNow();
      this.reset();
      const x = c === null ? null : g.value(c);
      if (x !== null && Number.isFinite(x)) this.set!(labels, x);
    });
  }
}

/** The allocator serving malloc, with its version (value 1). */
export function addAllocatorInfo(r: Registrar): void {
  const info = r.info;
  add(
    r,
    'gauge',
    `${r.prefix}allocator_info`,
    'The allocator serving malloc (value 1), with its version.',
    ['allocator', 'version'],
    function (this) {
      this.set!({ allocator: info.name, version: info.version ?? 'unknown' }, 1);
    },
  );
}
