// registerPrometheus(): metric names Prometheus accepts (promtool), scraped for real by a
// Prometheus server on loopback and read back through its query API.
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import client from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import * as fragstat from '..';
import { systemCommand } from './helpers';
import { startPrometheus, type PromSample, type PrometheusServer } from './prometheus-server';
// The room a monitor registers its verdict with, loaded from dist/ like the package.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const reading = require('../dist/monitor/reading') as typeof import('../src/monitor/reading');

// The cgroup figures on this machine, which decide which cgroup gauges exist.
const cgroup = fragstat.cgroupMemory();
const cgroupNames = [
  ...(cgroup?.maxBytes != null ? ['fragstat_cgroup_memory_limit_bytes'] : []),
  ...(cgroup?.currentBytes != null ? ['fragstat_cgroup_memory_usage_bytes'] : []),
];

const promtool = systemCommand('promtool', 'prometheus');
const prometheus = systemCommand('prometheus', 'prometheus');

describe('registerPrometheus', () => {
  it('exposes every figure with an allocator label, in base units', async () => {
    const registry = new client.Registry();
    const reg = fragstat.registerPrometheus(registry, { detail: true });
    expect(reg.names).toEqual([
      'fragstat_rss_bytes',
      'fragstat_allocated_bytes',
      'fragstat_free_bytes',
      'fragstat_resident_free_bytes',
      'fragstat_heap_bytes',
      'fragstat_fragmentation_ratio',
      'fragstat_resident_fragmentation_ratio',
      'fragstat_rss_to_allocated_ratio',
      'fragstat_arenas',
      'fragstat_largest_free_bytes',
      'fragstat_external_fragmentation_ratio',
      'fragstat_snapshot_duration_seconds',
      'fragstat_reading_age_seconds',
      'fragstat_trims_total',
      'fragstat_trim_released_bytes_total',
      'fragstat_v8_releases_total',
      'fragstat_v8_released_bytes_total',
      'fragstat_v8_release_pause_seconds_total',
      'fragstat_snapshot_errors_total',
      'fragstat_rss_part_bytes',
      'fragstat_verdict',
      'fragstat_verdict_confidence',
      'fragstat_verdict_rss_growth_bytes_per_second',
      ...cgroupNames,
      'fragstat_allocator_info',
    ]);
    const keep = Buffer.alloc(32 * 1024 * 1024, 1);
    const text = await registry.metrics();
    const value = (name: string) => Number(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'm').exec(text)![1]);
    const s = fragstat.snapshot();
    expect(value('fragstat_allocated_bytes')).toBeGreaterThan(keep.length);
    expect(Math.abs(value('fragstat_allocated_bytes') - s.allocatedBytes!)).toBeLessThan(4 * 1024 * 1024);
    expect(value('fragstat_arenas')).toBeGreaterThanOrEqual(1);
    expect(text).toMatch(/^fragstat_allocator_info\{allocator="glibc",version="2\.\d+"\} 1$/m);
    expect(text).toMatch(/^fragstat_rss_bytes\{allocator="glibc"\} \d+$/m);
  });

  it("publishes RSS by owner in parts that add up to RSS, and a running monitor's verdict", async () => {
    const registry = new client.Registry();
    fragstat.registerPrometheus(registry);
    const m = fragstat.monitor({ intervalMs: 10_000 });
    try {
      const text = await registry.metrics();
      const parts = [...text.matchAll(/^fragstat_rss_part_bytes\{allocator="glibc",part="(\w+)"\} (\S+)$/gm)];
      expect(parts.map((p) => p[1]).sort()).toEqual(
        ['allocatorOverhead', 'code', 'mallocFreeResident', 'mallocLive', 'other', 'stacks', 'v8Heap'].sort(),
      );
      const sum = parts.reduce((a, p) => a + Number(p[2]), 0);
      const rss = fragstat.snapshot().rssBytes!;
      expect(Math.abs(sum - rss) / rss).toBeLessThan(0.1);
      // One sample is too few for a verdict: the monitor says so, as 1 on that kind and 0 elsewhere.
      expect(text).toMatch(/^fragstat_verdict\{allocator="glibc",kind="insufficient-evidence"\} 1$/m);
      expect(text).toMatch(/^fragstat_verdict\{allocator="glibc",kind="fragmentation"\} 0$/m);
      // A first reading is a low-confidence verdict without evidence: no growth rate yet.
      expect(text).toMatch(/^fragstat_verdict_confidence\{allocator="glibc"\} 1$/m);
      expect(text).not.toMatch(/^fragstat_verdict_rss_growth_bytes_per_second\{/m);
    } finally {
      m.stop();
    }
    const after = await registry.metrics();
    expect(after).not.toMatch(/^fragstat_verdict\{/m);
    expect(after).not.toMatch(/^fragstat_verdict_confidence\{/m);
  });

  it("publishes the verdict's confidence as a number and its growth in bytes per second", async () => {
    const registry = new client.Registry();
    fragstat.registerPrometheus(registry);
    // A verdict drawn from readings that grow by 1 MiB a minute for ten minutes.
    const points = Array.from({ length: 60 }, (_, i) => ({
      timestamp: 1_700_000_000_000 + i * 10_000,
      rssBytes: 200 * 1024 * 1024 + (i * (1024 * 1024)) / 6,
      allocatedBytes: 100 * 1024 * 1024 + (i * (1024 * 1024)) / 6,
      v8HeapBytes: 50 * 1024 * 1024,
    }));
    const v = fragstat.verdict(points);
    expect(v.evidence).not.toBeNull();
    const handle = reading.attachMonitor(false, () => v);
    try {
      const text = await registry.metrics();
      const level = { low: 1, medium: 2, high: 3 }[v.confidence];
      expect(text).toMatch(new RegExp(`^fragstat_verdict_confidence\\{allocator="glibc"\\} ${level}$`, 'm'));
      const growth = Number(
        /^fragstat_verdict_rss_growth_bytes_per_second\{allocator="glibc"\} (\S+)$/m.exec(text)![1],
      );
      expect(growth).toBeCloseTo(v.evidence!.rssBytesPerHour / 3600, 6);
      // Close to the 1 MiB a minute the readings grew by.
      expect(Math.abs(growth - (1024 * 1024) / 60) / ((1024 * 1024) / 60)).toBeLessThan(0.2);
    } finally {
      handle.detach();
    }
  });

  it.runIf(cgroupNames.length > 0)(
    "publishes the cgroup's memory limit and usage as cgroupMemory() reads them",
    async () => {
      const registry = new client.Registry();
      const reg = fragstat.registerPrometheus(registry, { breakdown: false });
      expect(reg.names).toEqual(expect.arrayContaining(cgroupNames));
      const text = await registry.metrics();
      const now = fragstat.cgroupMemory()!;
      if (now.maxBytes !== null)
        expect(text).toMatch(
          new RegExp(`^fragstat_cgroup_memory_limit_bytes\\{allocator="glibc"\\} ${now.maxBytes}$`, 'm'),
        );
      const usage = Number(
        /^fragstat_cgroup_memory_usage_bytes\{allocator="glibc"\} (\S+)$/m.exec(text)?.[1],
      );
      // Usage moves between the two reads by what this process and its cgroup did meanwhile.
      expect(Math.abs(usage - now.currentBytes!) / now.currentBytes!).toBeLessThan(0.1);
    },
  );

  it('counts trims and released bytes', async () => {
    const registry = new client.Registry();
    fragstat.registerPrometheus(registry);
    const before = fragstat.trimLog();
    await fragstat.trim();
    const after = fragstat.trimLog();
    const text = await registry.metrics();
    expect(text).toMatch(
      new RegExp(`^fragstat_trims_total\\{allocator="glibc"\\} ${before.count + 1}$`, 'm'),
    );
    expect(text).toMatch(
      new RegExp(
        `^fragstat_trim_released_bytes_total\\{allocator="glibc"\\} ${after.releasedBytesTotal}$`,
        'm',
      ),
    );
  });

  it("counts releases of V8's idle heap, what they gave back and their pauses", async () => {
    const registry = new client.Registry();
    fragstat.registerPrometheus(registry);
    const before = fragstat.v8ReleaseLog();
    let junk: object[] | null = Array.from({ length: 200_000 }, (_, i) => ({ i, s: `x${i}` }));
    expect(junk.length).toBe(200_000);
    junk = null;
    const r = fragstat.releaseV8Heap();
    expect(r.supported).toBe(true);
    const after = fragstat.v8ReleaseLog();
    expect(after.count).toBe(before.count + 1);
    expect(after.last).toEqual(r);
    const text = await registry.metrics();
    const value = (name: string) =>
      Number(new RegExp(`^${name}\\{allocator="glibc"\\} (\\S+)$`, 'm').exec(text)![1]);
    expect(value('fragstat_v8_releases_total')).toBe(after.count);
    expect(value('fragstat_v8_released_bytes_total')).toBe(after.releasedBytesTotal);
    expect(value('fragstat_v8_released_bytes_total') - before.releasedBytesTotal).toBe(
      Math.max(0, r.releasedBytes),
    );
    expect(value('fragstat_v8_release_pause_seconds_total')).toBeCloseTo(after.pauseSecondsTotal, 9);
    expect(value('fragstat_v8_release_pause_seconds_total') - before.pauseSecondsTotal).toBeCloseTo(
      r.pauseMs / 1000,
      9,
    );
  });

  it('registering twice does not throw, and a prefix and unregister work', async () => {
    const registry = new client.Registry();
    const a = fragstat.registerPrometheus(registry);
    expect(() => fragstat.registerPrometheus(registry)).not.toThrow();
    const b = fragstat.registerPrometheus(registry, { prefix: 'svc_malloc_' });
    expect(b.names[0]).toBe('svc_malloc_rss_bytes');
    expect((await registry.getMetricsAsJSON()).length).toBe(a.names.length + b.names.length);
    b.unregister();
    expect((await registry.getMetricsAsJSON()).length).toBe(a.names.length);
    expect(() => fragstat.registerPrometheus({} as never)).toThrow(TypeError);
    expect(() => fragstat.registerPrometheus(registry, { prefix: 'bad-prefix' })).toThrow(TypeError);
  });

  it.runIf(promtool)('passes promtool check metrics', async () => {
    const registry = new client.Registry();
    fragstat.registerPrometheus(registry, { detail: true });
    await fragstat.trim();
    const r = spawnSync(promtool!, ['check', 'metrics'], {
      input: await registry.metrics(),
      encoding: 'utf8',
    });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});

describe.runIf(prometheus)('a real Prometheus server', () => {
  let server: http.Server | undefined;
  let prom: PrometheusServer | undefined;
  afterAll(async () => {
    prom?.stop();
    await new Promise((r) => server?.close(r) ?? r(undefined));
  });

  it('scrapes the app on loopback and returns the series through its query API', async () => {
    const registry = new client.Registry();
    fragstat.registerPrometheus(registry);
    // Every value of fragstat_allocated_bytes this app served to a scrape.
    const served = new Set<number>();
    server = http.createServer(async (_req, res) => {
      const body = await registry.metrics();
      const m = /^fragstat_allocated_bytes\{[^}]*\} (\S+)$/m.exec(body);
      if (m) served.add(Number(m[1]));
      res.setHeader('content-type', registry.contentType);
      res.end(body);
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const appPort = (server.address() as AddressInfo).port;
    prom = await startPrometheus(
      prometheus!,
      `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ['127.0.0.1:${appPort}']\n`,
    );
    const deadline = Date.now() + 45_000;
    let result: PromSample[] = [];
    while (Date.now() < deadline) {
      result = (await prom.query('fragstat_allocated_bytes')) ?? [];
      if (result.length) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(result).toHaveLength(1);
    expect(result[0].metric).toMatchObject({
      __name__: 'fragstat_allocated_bytes',
      allocator: 'glibc',
      job: 'app',
    });
    const scraped = Number(result[0].value[1]);
    // What Prometheus stored is exactly what fragstat served to one of its scrapes (the process's
    // live malloc bytes then, which move with whatever else the process does: not compared to
    // a reading taken now).
    expect(scraped).toBeGreaterThan(0);
    expect([...served]).toContain(scraped);
  }, 60_000);
});
