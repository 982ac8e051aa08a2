// Prometheus metrics through prom-client (a peer dependency): gauges read on scrape, off the JS
// thread, one snapshot shared by every metric of a scrape.
import { cgroupMemory } from '../read/cgroup';
import { allocator, trimLog } from '../read/core';
import { figures, probeFigures } from '../read/figures';
import { monitorVerdict, sharedBreakdown, sharedReading, type SharedReading } from '../monitor/reading';
import type { Snapshot } from '../base/types';
import { verdictConfidenceLevels, verdictKinds, type Verdict } from '../diagnose/verdict';
import { checkBoolean, checkKeys, checkNumber, checkOptions, describe } from '../base/validate';

/** The part of a prom-client Registry this module uses. */
export interface PromRegistry {
  getSingleMetric(name: string): unknown;
  registerMetric(metric: unknown): void;
  removeSingleMetric(name: string): void;
}

export interface PrometheusOptions {
  /** Prefix of every metric name. Default 'fragstat_'. */
  prefix?: string;
  /** Read detail figures (glibc: largest free chunk, arenas, external ratio) on each scrape. Default false. */
  detail?: boolean;
  /**
   * Least time between two readings taken for scrapes, ms (stretched when a reading is slow, and
   * unused while a monitor runs: scrapes then serve its latest sample). Default 1000.
   */
  cacheMs?: number;
  /**
   * Publish the RSS breakdown as `rss_part_bytes{part}` (from a breakdown taken at most once a
   * minute, off the JS thread) and a running monitor's verdict as `verdict{kind}`, with
   * `verdict_confidence` and `verdict_rss_growth_bytes_per_second`. Default true.
   */
  breakdown?: boolean;
  /**
   * The prom-client module to build metrics with. Default: require('prom-client') as resolved from
   * fragstat, which is the application's copy when npm deduplicates the peer dependency.
   */
  client?: unknown;
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

/** What registerPrometheus() did. */
export interface PrometheusRegistration {
  /** Names of the metrics now in the registry. */
  names: string[];
  /** Removes them from the registry. */
  unregister(): void;
}

interface PromClient {
  Gauge: new (config: object) => { set(labels: object, v: number): void; reset(): void };
  Counter: new (config: object) => { inc(labels: object, v: number): void; reset(): void };
}

/**
 * Registers fragstat's metrics in `registry` (a prom-client Registry, e.g. `client.register`).
 * Every metric carries an `allocator` label; figures the running allocator cannot report are not
 * registered, nor the cgroup's memory limit and usage where the cgroup does not report them, and
 * a figure unknown at one scrape is left out of it. Registering again in the same
 * registry does not throw: metrics already there are kept.
 */
export function registerPrometheus(
  registry: PromRegistry,
  options?: PrometheusOptions,
): PrometheusRegistration {
  if (
    registry === null ||
    typeof registry !== 'object' ||
    typeof registry.getSingleMetric !== 'function' ||
    typeof registry.registerMetric !== 'function'
  ) {
    throw new TypeError(
      `Expected a prom-client Registry for registerPrometheus(registry) but received ${describe(registry)}`,
    );
  }
  const o = checkOptions('registerPrometheus(registry, options)', options);
  checkKeys('registerPrometheus(registry, options)', o, [
    'prefix',
    'detail',
    'cacheMs',
    'breakdown',
    'client',
  ]);
  const prefix = o.prefix === undefined ? 'fragstat_' : o.prefix;
  if (typeof prefix !== 'string' || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$|^$/.test(prefix)) {
    throw new TypeError(
      `Expected a metric-name prefix ([a-zA-Z_:][a-zA-Z0-9_:]*) for options.prefix but received ${describe(prefix)}`,
    );
  }
  const detail = checkBoolean('options.detail', o.detail, false);
  const cacheMs = checkNumber('options.cacheMs', o.cacheMs, 1000, 0, Infinity);
  const withBreakdown = checkBoolean('options.breakdown', o.breakdown, true);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const client = (o.client ?? require('prom-client')) as PromClient;

  const info = allocator();
  // One reading serves every metric of a scrape: one still in flight is shared, and a finished
  // one is reused for cacheMs. Readings come from the shared, rate-limited reading (reading.ts). A failed one (an allocator interface error) is counted
  // once and leaves the gauges out, rather than failing the whole registry's output, the
  // application's own metrics included.
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
  const labels = { allocator: info.name };
  const names: string[] = [];
  const added: string[] = [];

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
    const name = prefix + d.name;
    names.push(name);
    if (registry.getSingleMetric(name)) continue;
    const value = d.value;
    const config = {
      name,
      help: d.help,
      labelNames: ['allocator'],
      registers: [registry],
      async collect(this: {
        set?(l: object, v: number): void;
        inc?(l: object, v: number): void;
        reset(): void;
      }) {
        if (d.kind === 'counter') {
          // Wait for this scrape's snapshot, so a failure in it is already counted; then reset
          // and set with no await between, or overlapping scrapes would add twice.
          await current();
          this.reset();
          this.inc!(labels, (value as (errors: number) => number)(errors));
          return;
        }
        const r = await current();
        this.reset();
        if (r === null) return;
        const v = (value as (s: Snapshot, r: SharedReading) => number | null)(r.snapshot, r);
        if (v !== null && Number.isFinite(v)) this.set!(labels, v);
      },
    };
    if (d.kind === 'counter') new client.Counter(config);
    else new client.Gauge(config);
    added.push(name);
  }

  if (withBreakdown) {
    const partsName = `${prefix}rss_part_bytes`;
    names.push(partsName);
    if (!registry.getSingleMetric(partsName)) {
      new client.Gauge({
        name: partsName,
        help: 'Resident memory by owner (v8Heap, mallocLive, mallocFreeResident, allocatorOverhead, code, stacks, other); the parts add up to RSS. Refreshed at most once a minute.',
        labelNames: ['allocator', 'part'],
        registers: [registry],
        async collect(this: { set(l: object, v: number): void; reset(): void }) {
          const b = await sharedBreakdown();
          this.reset();
          if (b === null) return;
          for (const [part, v] of Object.entries(b.breakdown.parts)) this.set({ ...labels, part }, v);
        },
      });
      added.push(partsName);
    }
    // The monitor computes its verdict over its whole history: one per scrape serves the three
    // verdict metrics (not cached beyond the scrape: a stopped monitor's verdict leaves at once).
    const verdictNow = perScrape<Verdict | null>(monitorVerdict, 0);
    const verdictName = `${prefix}verdict`;
    names.push(verdictName);
    if (!registry.getSingleMetric(verdictName)) {
      new client.Gauge({
        name: verdictName,
        help: "A running monitor's verdict on why RSS moves: 1 for the current kind, 0 for the others.",
        labelNames: ['allocator', 'kind'],
        registers: [registry],
        collect(this: { set(l: object, v: number): void; reset(): void }) {
          const v = verdictNow();
          this.reset();
          if (v === null) return;
          for (const kind of verdictKinds) this.set({ ...labels, kind }, kind === v.kind ? 1 : 0);
        },
      });
      added.push(verdictName);
    }
    const verdictGauges: { name: string; help: string; value: (v: Verdict) => number | null }[] = [
      {
        name: `${prefix}verdict_confidence`,
        help: "How firm a running monitor's verdict is: 1 low, 2 medium, 3 high.",
        value: (v) => verdictConfidenceLevels[v.confidence],
      },
      {
        name: `${prefix}verdict_rss_growth_bytes_per_second`,
        help: "Growth of RSS's troughs over a running monitor's verdict window (negative when they fell); absent before the monitor has enough readings.",
        value: (v) => (v.evidence === null ? null : v.evidence.rssBytesPerHour / 3600),
      },
    ];
    for (const g of verdictGauges) {
      names.push(g.name);
      if (registry.getSingleMetric(g.name)) continue;
      new client.Gauge({
        name: g.name,
        help: g.help,
        labelNames: ['allocator'],
        registers: [registry],
        collect(this: { set(l: object, v: number): void; reset(): void }) {
          const v = verdictNow();
          this.reset();
          const x = v === null ? null : g.value(v);
          if (x !== null && Number.isFinite(x)) this.set(labels, x);
        },
      });
      added.push(g.name);
    }
  }

  // The container's memory limit and usage, from one read of the cgroup filesystem per scrape
  // (cached for cacheMs), registered only when the cgroup reports the figure at registration.
  const cgroupNow = perScrape(() => {
    try {
      return cgroupMemory();
    } catch {
      return null;
    }
  }, cacheMs);
  const cgroupProbe = cgroupNow();
  const cgroupGauges: {
    name: string;
    help: string;
    value: (c: NonNullable<typeof cgroupProbe>) => number | null;
  }[] = [
    {
      name: `${prefix}cgroup_memory_limit_bytes`,
      help: "The memory limit of the process's cgroup (the lowest along its ancestors).",
      value: (c) => c.maxBytes,
    },
    {
      name: `${prefix}cgroup_memory_usage_bytes`,
      help: "Memory charged to the process's cgroup, page cache included.",
      value: (c) => c.currentBytes,
    },
  ];
  for (const g of cgroupGauges) {
    if (cgroupProbe === null || g.value(cgroupProbe) === null) continue;
    names.push(g.name);
    if (registry.getSingleMetric(g.name)) continue;
    new client.Gauge({
      name: g.name,
      help: g.help,
      labelNames: ['allocator'],
      registers: [registry],
      collect(this: { set(l: object, v: number): void; reset(): void }) {
        const c = cgroupNow();
        this.reset();
        const x = c === null ? null : g.value(c);
        if (x !== null && Number.isFinite(x)) this.set(labels, x);
      },
    });
    added.push(g.name);
  }

  const infoName = `${prefix}allocator_info`;
  names.push(infoName);
  if (!registry.getSingleMetric(infoName)) {
    new client.Gauge({
      name: infoName,
      help: 'The allocator serving malloc (value 1), with its version.',
      labelNames: ['allocator', 'version'],
      registers: [registry],
      collect(this: { set(l: object, v: number): void }) {
        this.set({ allocator: info.name, version: info.version ?? 'unknown' }, 1);
      },
    });
    added.push(infoName);
  }

  return {
    names,
    unregister() {
      for (const n of added) registry.removeSingleMetric(n);
    },
  };
}
