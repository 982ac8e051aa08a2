// Every metric fragstat exports, checked against the naming rules of where it goes: Prometheus's
// (snake_case, base units as the name's suffix, _total on counters only, _info gauges at 1) and
// OpenTelemetry's semantic conventions (lowercase dot namespaces, the unit in UCUM beside the
// name rather than in it, no total, plural names only for counts of things). docs/PRODUCTION.md
// lists the names.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import client from 'prom-client';
import { describe, expect, it } from 'vitest';
import * as fragstat from '..';
import { root, systemCommand } from './helpers';

const promtool = systemCommand('promtool', 'prometheus');

/** Every metric registerPrometheus() can register here (detail, a monitor), as the exposition says. */
async function prometheusMetrics() {
  const registry = new client.Registry();
  fragstat.registerPrometheus(registry, { detail: true });
  const m = fragstat.monitor({ intervalMs: 10_000 });
  try {
    await fragstat.trim();
    const text = await registry.metrics();
    const types = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((x) => [x[1], x[2]]));
    const samples = [...text.matchAll(/^(\w+)(?:\{([^}]*)\})? (\S+)$/gm)].map((x) => ({
      name: x[1],
      labels: [...(x[2] ?? '').matchAll(/(\w+)="/g)].map((l) => l[1]),
      value: Number(x[3]),
    }));
    return { text, types, samples };
  } finally {
    m.stop();
  }
}

// Prometheus: a name states its unit as a suffix, in base units and plural (_bytes, _seconds,
// _ratio for a share), followed by _total on a counter; _info for a gauge of labels at 1.
const unitSuffix = /_(bytes|seconds|ratio|bytes_per_second)$/;
// Names without a unit, and why: a count of things, a state set, an ordinal, an info metric.
const unitless: Record<string, string> = {
  fragstat_arenas: 'a count of arenas',
  fragstat_verdict: 'a state set: 1 for the current kind, 0 for the others',
  fragstat_verdict_confidence: 'an ordinal: 1 low, 2 medium, 3 high',
  fragstat_trims_total: 'a count of trims',
  fragstat_v8_releases_total: 'a count of V8 releases',
  fragstat_snapshot_errors_total: 'a count of failed reads',
  fragstat_allocator_info: 'an info metric',
};

describe('Prometheus names', () => {
  it('follow the naming conventions: snake_case, unit suffixes, _total and _info', async () => {
    const { types, samples } = await prometheusMetrics();
    expect(types.size).toBeGreaterThan(15);
    for (const [name, type] of types) {
      expect(name, name).toMatch(/^fragstat_[a-z0-9]+(_[a-z0-9]+)*$/); // no colon: those are for recording rules
      if (type === 'counter') expect(name, name).toMatch(/_total$/);
      else expect(name, name).not.toMatch(/_total$/);
      const base = name.replace(/_total$/, '');
      if (name.endsWith('_info')) {
        expect(type).toBe('gauge');
        for (const s of samples.filter((x) => x.name === name)) expect(s.value, name).toBe(1);
      } else if (!(name in unitless)) {
        expect(base, `${name} has no unit suffix`).toMatch(unitSuffix);
      }
      // Base units only, and a unit word only as the suffix.
      expect(name, name).not.toMatch(/_(ms|milliseconds|kilobytes|megabytes|kib|mib|percent|count)(_|$)/);
      const unitWord = /_(bytes|seconds|ratio)_/.exec(base);
      if (unitWord) expect(base, name).toMatch(unitSuffix);
    }
    // The ratios are shares or multiples, never percentages.
    for (const s of samples.filter((x) => x.name.endsWith('_ratio')))
      expect(s.value, s.name).toBeLessThan(100);
  });

  it('label names are snake_case and none is reserved', async () => {
    const { samples } = await prometheusMetrics();
    const labels = new Set(samples.flatMap((s) => s.labels));
    expect([...labels].sort()).toEqual(['allocator', 'kind', 'part', 'version']);
    for (const l of labels) {
      expect(l).toMatch(/^[a-z][a-z0-9_]*$/);
      expect(['le', 'quantile', 'job', 'instance']).not.toContain(l);
    }
  });

  it.runIf(promtool)(
    'pass promtool check metrics with every metric present (monitor, detail, a trim)',
    async () => {
      const { text } = await prometheusMetrics();
      const r = spawnSync(promtool!, ['check', 'metrics'], { input: text, encoding: 'utf8' });
      expect(r.stdout + r.stderr).toBe('');
      expect(r.status).toBe(0);
    },
  );

  it("the rules' recorded series follow level:metric:operations", () => {
    const rules = readFileSync(path.join(root, 'monitoring/prometheus/fragstat.rules.yml'), 'utf8');
    const records = [...rules.matchAll(/^\s*- record: (\S+)$/gm)].map((m) => m[1]);
    expect(records.length).toBeGreaterThan(5);
    for (const r of records) expect(r).toMatch(/^fragstat:[a-z][a-z0-9_]*:[a-z][a-z0-9_]*$/);
  });
});

// OpenTelemetry: https://opentelemetry.io/docs/specs/semconv/general/naming/ and
// .../general/metrics/ (units).
const ucum = /^(By|s|1|By\/s|\{[a-z_]+\})$/;

async function otelInstruments() {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60_000 });
  const provider = new MeterProvider({ readers: [reader] });
  const m = fragstat.monitor({ intervalMs: 10_000 });
  const remove = fragstat.registerOpenTelemetry(provider.getMeter('names'), { detail: true });
  try {
    await reader.forceFlush();
    return exporter
      .getMetrics()
      .flatMap((rm) => rm.scopeMetrics.flatMap((sm) => sm.metrics))
      .map((x) => ({
        name: x.descriptor.name,
        unit: x.descriptor.unit,
        attributes: [...new Set(x.dataPoints.flatMap((d) => Object.keys(d.attributes)))],
      }));
  } finally {
    remove();
    m.stop();
    await provider.shutdown();
  }
}

describe('OpenTelemetry instrument names', () => {
  it('follow the semantic conventions: lowercase dot namespaces, UCUM units beside the name, no total', async () => {
    const instruments = await otelInstruments();
    expect(instruments.length).toBeGreaterThan(12);
    for (const { name, unit } of instruments) {
      // Lowercase letters, digits, underscores within a component, dots between; starts with a
      // letter, ends alphanumeric, no two delimiters in a row; at most 255 characters (the API's limit).
      expect(name, name).toMatch(/^fragstat(\.[a-z][a-z0-9]*(_[a-z0-9]+)*)+$/);
      expect(name.length).toBeLessThanOrEqual(255);
      // The unit goes in `unit`, in UCUM: By, s, 1, or a {annotation} in the singular.
      expect(unit, name).toMatch(ucum);
      if (unit.startsWith('{')) expect(unit, name).not.toMatch(/s\}$/);
      const components = name.split('.');
      for (const c of components) {
        expect(c, name).not.toMatch(/(^|_)(bytes?|seconds?|ms|ratio|percent|total)$/);
      }
      // Namespaces are not plural; a name is plural only when it counts things ({annotation} unit).
      for (const c of components.slice(0, -1)) expect(c, name).not.toMatch(/[^s]s$/);
      if (/[^s]s$/.test(components[components.length - 1])) expect(unit, name).toMatch(/^\{/);
    }
  });

  it("keep registerPrometheus()'s names when a collector translates them for Prometheus", async () => {
    // The OpenTelemetry-to-Prometheus translation: dots to underscores, the unit as a suffix (By
    // bytes, s seconds, 1 ratio on a gauge, an {annotation} dropped), _total on a counter.
    const instruments = await otelInstruments();
    const { types } = await prometheusMetrics();
    const counters = new Set([
      'fragstat.trims',
      'fragstat.trim.released',
      'fragstat.v8.releases',
      'fragstat.v8.released',
      'fragstat.v8.release.pause',
      'fragstat.snapshot.errors',
    ]);
    const suffix: Record<string, string> = {
      By: '_bytes',
      s: '_seconds',
      '1': '_ratio',
      'By/s': '_bytes_per_second',
    };
    // fragstat.verdict is a state (0 or 1) and fragstat.verdict.confidence an ordinal (1 to 3):
    // unit 1, as semantic conventions give dimensionless states (hw.status), which the
    // translation reads as a ratio; registerPrometheus() names them without _ratio.
    const differs: Record<string, string> = {
      'fragstat.verdict': 'fragstat_verdict',
      'fragstat.verdict.confidence': 'fragstat_verdict_confidence',
    };
    for (const { name, unit } of instruments) {
      const base = name.replace(/\./g, '_') + (suffix[unit] ?? '');
      const translated = counters.has(name) ? `${base}_total` : base;
      expect(types.has(differs[name] ?? translated), `${name} -> ${translated}`).toBe(true);
    }
  });

  it('attribute names are lowercase snake_case', async () => {
    const instruments = await otelInstruments();
    const attributes = new Set(instruments.flatMap((i) => i.attributes));
    expect([...attributes].sort()).toEqual(['allocator', 'kind', 'part']);
    for (const a of attributes) expect(a).toMatch(/^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$/);
  });
});

describe("the README's metric table", () => {
  it('lists every Prometheus metric and OpenTelemetry instrument once, with a unit and a type', async () => {
    const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
    const rows = readme.split('\n').filter((l) => /^\| `fragstat_/.test(l));
    const { types } = await prometheusMetrics();
    const instruments = await otelInstruments();
    // The cgroup metrics are not registered where no cgroup limit is read, but are listed.
    const names = new Set([
      ...types.keys(),
      'fragstat_cgroup_memory_limit_bytes',
      'fragstat_cgroup_memory_usage_bytes',
    ]);
    const cells = rows.map((r) => r.split('|').map((c) => c.trim()));
    const promColumn = cells.map((c) => /^`(\w+)/.exec(c[1])![1]);
    expect(promColumn.length).toBe(new Set(promColumn).size); // each once
    expect(new Set(promColumn)).toEqual(names);
    const otelColumn = cells.map((c) => /^`([\w.]+)`/.exec(c[2])?.[1]).filter(Boolean);
    expect(otelColumn.length).toBe(new Set(otelColumn).size);
    for (const { name } of instruments) expect(otelColumn, name).toContain(name);
    for (const c of cells) {
      expect(['gauge', 'counter']).toContain(c[3]);
      expect(c[3], c[1]).toBe(types.get(/^`(\w+)/.exec(c[1])![1]) ?? 'gauge');
      expect(c[4], c[1]).not.toBe('');
    }
  });
});
