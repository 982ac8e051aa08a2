// OpenTelemetry metrics through @opentelemetry/api (a peer dependency): observable instruments
// read together, off the JS thread, once per collection.
import { cgroupMemory, type CgroupMemory } from '../read/cgroup';
import { allocator, trimLog } from '../read/core';
import { v8ReleaseLog } from '../cure/v8heap';
import { figures, probeFigures } from '../read/figures';
import { monitorVerdict, sharedBreakdown, sharedReading } from '../monitor/reading';
import { verdictConfidenceLevels, verdictKinds } from '../diagnose/verdict';
import type { Snapshot } from '../base/types';
import { checkBoolean, checkKeys, checkOptions, describe } from '../base/validate';

/** The part of an @opentelemetry/api Meter this module uses. */
export interface OtelMeter {
  createObservableGauge(name: string, options?: { description?: string; unit?: string }): unknown;
  createObservableCounter(name: string, options?: { description?: string; unit?: string }): unknown;
  addBatchObservableCallback(
    callback: (observer: {
      observe(instrument: unknown, value: number, attributes?: object): void;
    }) => unknown,
    observables: unknown[],
  ): void;
  removeBatchObservableCallback(
    callback: (observer: {
      observe(instrument: unknown, value: number, attributes?: object): void;
    }) => unknown,
    observables: unknown[],
  ): void;
}

export interface OpenTelemetryOptions {
  /** Prefix of every instrument name. Default 'fragstat.'. */
  prefix?: string;
  /** Read detail figures (glibc: largest free chunk, arenas, external ratio). Default false. */
  detail?: boolean;
  /**
   * Observe the RSS breakdown as `rss.part` (attribute `part`; a breakdown taken at most once a
   * minute, off the JS thread) and a running monitor's verdict as `verdict` (attribute `kind`: 1
   * for the current kind, 0 for the others), with `verdict.confidence` and `verdict.rss.growth`.
   * Default true.
   */
  breakdown?: boolean;
}

type Value = (s: Snapshot) => number | null;

const units = { bytes: 'By', ratio: '1', arenas: '{arena}' } as const;

function readCgroup(): CgroupMemory | null {
  try {
    return cgroupMemory();
  } catch {
    return null;
  }
}

/**
 * Creates fragstat's observable instruments on `meter` (from @opentelemetry/api's
 * metrics.getMeter()). Every observation carries the attribute `allocator`. The cgroup's memory
 * limit and usage get instruments only where the cgroup reports them. Returns a function that
 * removes the callback.
 */
export function registerOpenTelemetry(meter: OtelMeter, options?: OpenTelemetryOptions): () => void {
  if (meter === null || typeof meter !== 'object' || typeof meter.addBatchObservableCallback !== 'function') {
    throw new TypeError(
      `Expected an OpenTelemetry Meter for registerOpenTelemetry(meter) but received ${describe(meter)}`,
    );
  }
  const o = checkOptions('registerOpenTelemetry(meter, options)', options);
  checkKeys('registerOpenTelemetry(meter, options)', o, ['prefix', 'detail', 'breakdown']);
  const prefix = o.prefix === undefined ? 'fragstat.' : o.prefix;
  if (typeof prefix !== 'string')
    throw new TypeError(`Expected a string for options.prefix but received ${describe(prefix)}`);
  const detail = checkBoolean('options.detail', o.detail, false);
  const withBreakdown = checkBoolean('options.breakdown', o.breakdown, true);
  const info = allocator();
  const attributes = { allocator: info.name };
  const probe = probeFigures(detail);

  const observed: { instrument: unknown; value: Value }[] = [];
  for (const f of figures) {
    if (probe !== null && f.value(probe) === null) continue; // never available under this allocator / without detail
    observed.push({
      instrument: meter.createObservableGauge(prefix + f.id, { description: f.help, unit: units[f.unit] }),
      value: f.value,
    });
  }
  const trims = meter.createObservableCounter(`${prefix}trims`, {
    description: 'Trims run in this thread',
    unit: '{trim}',
  });
  const released = meter.createObservableCounter(`${prefix}trim.released`, {
    description: 'RSS released by those trims',
    unit: 'By',
  });

  const v8Releases = meter.createObservableCounter(`${prefix}v8.releases`, {
    description: "Releases of V8's idle heap in this thread",
    unit: '{release}',
  });
  const v8Released = meter.createObservableCounter(`${prefix}v8.released`, {
    description: 'V8 heap pages those releases gave back',
    unit: 'By',
  });
  const v8Pause = meter.createObservableCounter(`${prefix}v8.release.pause`, {
    description: 'Time the JS thread was held by those releases',
    unit: 's',
  });

  const failures = meter.createObservableCounter(`${prefix}snapshot.errors`, {
    description: 'Collections whose allocator read failed (their gauges are left out)',
    unit: '{error}',
  });

  const parts = withBreakdown
    ? meter.createObservableGauge(`${prefix}rss.part`, {
        description: 'Resident memory by owner; the parts add up to RSS. Refreshed at most once a minute.',
        unit: 'By',
      })
    : null;
  const verdictGauge = withBreakdown
    ? meter.createObservableGauge(`${prefix}verdict`, {
        description:
          "A running monitor's verdict on why RSS moves: 1 for the current kind, 0 for the others.",
        unit: '1',
      })
    : null;

  const confidenceGauge = withBreakdown
    ? meter.createObservableGauge(`${prefix}verdict.confidence`, {
        description: "How firm a running monitor's verdict is: 1 low, 2 medium, 3 high.",
        unit: '1',
      })
    : null;
  const growthGauge = withBreakdown
    ? meter.createObservableGauge(`${prefix}verdict.rss.growth`, {
        description:
          "Growth of RSS's troughs over a running monitor's verdict window (negative when they fell).",
        unit: 'By/s',
      })
    : null;

  // The cgroup's memory limit and usage: instruments only for the figures the cgroup reports now,
  // and one read of the cgroup filesystem per collection.
  const cgroupProbe = readCgroup();
  const cgroupObserved: { instrument: unknown; value: (c: CgroupMemory) => number | null }[] = [];
  if (cgroupProbe?.maxBytes != null)
    cgroupObserved.push({
      instrument: meter.createObservableGauge(`${prefix}cgroup.memory.limit`, {
        description: "The memory limit of the process's cgroup (the lowest along its ancestors).",
        unit: 'By',
      }),
      value: (c) => c.maxBytes,
    });
  if (cgroupProbe?.currentBytes != null)
    cgroupObserved.push({
      instrument: meter.createObservableGauge(`${prefix}cgroup.memory.usage`, {
        description: "Memory charged to the process's cgroup, page cache included.",
        unit: 'By',
      }),
      value: (c) => c.currentBytes,
    });

  let errors = 0;
  const callback = async (observer: {
    observe(instrument: unknown, value: number, attributes?: object): void;
  }) => {
    // A failed read (an allocator interface error) leaves the gauges out of this collection
    // instead of failing it; the counters are still reported.
    // The shared, rate-limited reading: a running monitor's latest sample, or a reading taken at
    // most once a second (less often when readings are slow).
    const s = await sharedReading(detail).then(
      (r) => r.snapshot,
      (): null => {
        errors++;
        return null;
      },
    );
    if (s !== null) {
      for (const { instrument, value } of observed) {
        const v = value(s);
        if (v !== null && Number.isFinite(v)) observer.observe(instrument, v, attributes);
      }
    }
    if (parts !== null) {
      const b = await sharedBreakdown();
      if (b !== null) {
        for (const [part, v] of Object.entries(b.breakdown.parts))
          observer.observe(parts, v, { ...attributes, part });
      }
    }
    const v = verdictGauge === null ? null : monitorVerdict();
    if (v !== null) {
      for (const kind of verdictKinds)
        observer.observe(verdictGauge, kind === v.kind ? 1 : 0, { ...attributes, kind });
      observer.observe(confidenceGauge, verdictConfidenceLevels[v.confidence], attributes);
      if (v.evidence !== null && Number.isFinite(v.evidence.rssBytesPerHour))
        observer.observe(growthGauge, v.evidence.rssBytesPerHour / 3600, attributes);
    }
    const c = cgroupObserved.length > 0 ? readCgroup() : null;
    if (c !== null) {
      for (const { instrument, value } of cgroupObserved) {
        const x = value(c);
        if (x !== null && Number.isFinite(x)) observer.observe(instrument, x, attributes);
      }
    }
    const log = trimLog();
    observer.observe(trims, log.count, attributes);
    observer.observe(released, log.releasedBytesTotal, attributes);
    const v8Log = v8ReleaseLog();
    observer.observe(v8Releases, v8Log.count, attributes);
    observer.observe(v8Released, v8Log.releasedBytesTotal, attributes);
    observer.observe(v8Pause, v8Log.pauseSecondsTotal, attributes);
    observer.observe(failures, errors, attributes);
  };
  const all = [
    ...observed.map((x) => x.instrument),
    ...(parts === null ? [] : [parts, verdictGauge, confidenceGauge, growthGauge]),
    ...cgroupObserved.map((x) => x.instrument),
    trims,
    released,
    v8Releases,
    v8Released,
    v8Pause,
    failures,
  ];
  meter.addBatchObservableCallback(callback, all);
  return () => meter.removeBatchObservableCallback(callback, all);
}
