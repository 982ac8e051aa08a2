// registerOpenTelemetry(): observable instruments collected by the OpenTelemetry SDK, read back
// from its in-memory exporter.
import { metrics } from '@opentelemetry/api';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { describe, expect, it } from 'vitest';
import * as fragstat from '..';
// The room a monitor registers its verdict with, loaded from dist/ like the package.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const reading = require('../dist/monitor/reading') as typeof import('../src/monitor/reading');
// The cgroup figures on this machine, which decide which cgroup instruments exist.
const cgroup = fragstat.cgroupMemory();

async function collect(options?: fragstat.OpenTelemetryOptions) {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60_000 });
  const provider = new MeterProvider({ readers: [reader] });
  const remove = fragstat.registerOpenTelemetry(provider.getMeter('test'), options);
  await reader.forceFlush();
  const points = new Map<
    string,
    {
      value: number;
      attributes: Record<string, unknown>;
      unit: string;
      all: { value: number; attributes: Record<string, unknown> }[];
    }
  >();
  for (const rm of exporter.getMetrics()) {
    for (const sm of rm.scopeMetrics) {
      for (const m of sm.metrics) {
        const p = m.dataPoints[0];
        points.set(m.descriptor.name, {
          value: p.value as number,
          attributes: p.attributes,
          unit: m.descriptor.unit,
          all: m.dataPoints.map((d) => ({ value: d.value as number, attributes: d.attributes })),
        });
      }
    }
  }
  remove();
  await provider.shutdown();
  return points;
}

describe('registerOpenTelemetry', () => {
  it('reports the snapshot figures as observable gauges with units and an allocator attribute', async () => {
    const keep = Buffer.alloc(32 * 1024 * 1024, 1);
    const points = await collect({ detail: true });
    const s = fragstat.snapshot();
    expect([...points.keys()].sort()).toEqual(
      [
        'fragstat.rss',
        'fragstat.allocated',
        'fragstat.free',
        'fragstat.resident_free',
        'fragstat.heap',
        'fragstat.fragmentation',
        'fragstat.resident_fragmentation',
        'fragstat.rss_to_allocated',
        'fragstat.rss.part',
        'fragstat.arenas',
        'fragstat.largest_free',
        'fragstat.external_fragmentation',
        'fragstat.trims',
        'fragstat.trim.released',
        'fragstat.v8.releases',
        'fragstat.v8.released',
        'fragstat.v8.release.pause',
        'fragstat.snapshot.errors',
        ...(cgroup?.maxBytes != null ? ['fragstat.cgroup.memory.limit'] : []),
        ...(cgroup?.currentBytes != null ? ['fragstat.cgroup.memory.usage'] : []),
      ].sort(),
    );
    const allocated = points.get('fragstat.allocated')!;
    expect(allocated.unit).toBe('By');
    expect(allocated.attributes).toEqual({ allocator: 'glibc' });
    expect(allocated.value).toBeGreaterThan(keep.length);
    expect(Math.abs(allocated.value - s.allocatedBytes!)).toBeLessThan(4 * 1024 * 1024);
    expect(points.get('fragstat.fragmentation')!.unit).toBe('1');
    expect(points.get('fragstat.arenas')!.value).toBeGreaterThanOrEqual(1);
    expect(points.get('fragstat.snapshot.errors')!.value).toBe(0);
  });

  it("observes RSS by owner, parts adding up to RSS, and a running monitor's verdict", async () => {
    const m = fragstat.monitor({ intervalMs: 10_000 });
    try {
      const points = await collect();
      const parts = points.get('fragstat.rss.part')!;
      expect(parts.unit).toBe('By');
      expect(parts.all.map((p) => p.attributes.part).sort()).toEqual(
        ['allocatorOverhead', 'code', 'mallocFreeResident', 'mallocLive', 'other', 'stacks', 'v8Heap'].sort(),
      );
      const sum = parts.all.reduce((a, p) => a + p.value, 0);
      const rss = fragstat.snapshot().rssBytes!;
      expect(Math.abs(sum - rss) / rss).toBeLessThan(0.1);
      const verdict = points.get('fragstat.verdict')!;
      expect(verdict.all.find((p) => p.attributes.kind === 'insufficient-evidence')!.value).toBe(1);
      expect(verdict.all.find((p) => p.attributes.kind === 'fragmentation')!.value).toBe(0);
      // A first reading is a low-confidence verdict without evidence: no growth rate yet.
      expect(points.get('fragstat.verdict.confidence')).toMatchObject({ value: 1, unit: '1' });
      expect(points.has('fragstat.verdict.rss.growth')).toBe(false);
    } finally {
      m.stop();
    }
  });

  it("observes the verdict's growth in bytes per second", async () => {
    // A verdict drawn from readings that grow by 1 MiB a minute for ten minutes.
    const MiB = 1024 * 1024;
    const v = fragstat.verdict(
      Array.from({ length: 60 }, (_, i) => ({
        timestamp: 1_700_000_000_000 + i * 10_000,
        rssBytes: 200 * MiB + (i * MiB) / 6,
        allocatedBytes: 100 * MiB + (i * MiB) / 6,
        v8HeapBytes: 50 * MiB,
      })),
    );
    expect(v.evidence).not.toBeNull();
    const handle = reading.attachMonitor(false, () => v);
    try {
      const points = await collect();
      const growth = points.get('fragstat.verdict.rss.growth')!;
      expect(growth.unit).toBe('By/s');
      expect(growth.value).toBeCloseTo(v.evidence!.rssBytesPerHour / 3600, 6);
      expect(Math.abs(growth.value - MiB / 60) / (MiB / 60)).toBeLessThan(0.2);
      expect(points.get('fragstat.verdict.confidence')!.value).toBe(
        { low: 1, medium: 2, high: 3 }[v.confidence],
      );
    } finally {
      handle.detach();
    }
  });

  it.runIf(cgroup?.maxBytes != null || cgroup?.currentBytes != null)(
    "observes the cgroup's memory limit and usage as cgroupMemory() reads them",
    async () => {
      const points = await collect({ breakdown: false });
      const now = fragstat.cgroupMemory()!;
      if (now.maxBytes !== null) expect(points.get('fragstat.cgroup.memory.limit')!.value).toBe(now.maxBytes);
      if (now.currentBytes !== null) {
        const usage = points.get('fragstat.cgroup.memory.usage')!;
        expect(usage.unit).toBe('By');
        expect(Math.abs(usage.value - now.currentBytes) / now.currentBytes).toBeLessThan(0.1);
      }
    },
  );

  it('counts trims', async () => {
    await fragstat.trim();
    const points = await collect();
    expect(points.get('fragstat.trims')!.value).toBe(fragstat.trimLog().count);
    expect(points.get('fragstat.trim.released')!.value).toBe(fragstat.trimLog().releasedBytesTotal);
    expect(points.has('fragstat.largest_free')).toBe(false); // needs detail
  });

  it("counts releases of V8's idle heap", async () => {
    const r = fragstat.releaseV8Heap();
    expect(r.supported).toBe(true);
    const points = await collect();
    const log = fragstat.v8ReleaseLog();
    expect(log.count).toBeGreaterThanOrEqual(1);
    expect(points.get('fragstat.v8.releases')!.value).toBe(log.count);
    expect(points.get('fragstat.v8.released')!.value).toBe(log.releasedBytesTotal);
    expect(points.get('fragstat.v8.released')!.unit).toBe('By');
    expect(points.get('fragstat.v8.release.pause')!.value).toBeCloseTo(log.pauseSecondsTotal, 9);
    expect(points.get('fragstat.v8.release.pause')!.unit).toBe('s');
  });

  it('works with the global API meter and rejects what is not a meter', () => {
    expect(() => fragstat.registerOpenTelemetry(metrics.getMeter('noop'))()).not.toThrow();
    expect(() => fragstat.registerOpenTelemetry({} as never)).toThrow(TypeError);
  });
});
