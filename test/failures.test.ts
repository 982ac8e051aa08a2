// When an allocator's own interface fails, every entry point says so with a stable code, and
// nothing takes the service down: the health endpoint answers, the monitor keeps sampling, and
// metrics exports keep the application's own metrics. FRAGSTAT_FAIL_SYMBOLS swaps the real
// function for a stand-in that fails as it can (malloc_info: -1 and EINVAL; mallctl: EIO).
import { describe, expect, it } from 'vitest';
import { havePreload, runFixture } from './helpers';

interface Settled<T> {
  ok: boolean;
  value?: T;
  name?: string;
  code?: string;
  message?: string;
}

interface Failures {
  allocator: string;
  cheapSnapshot: Settled<number>;
  snapshot: Settled<unknown>;
  snapshotAsync: Settled<unknown>;
  trimSync: Settled<boolean>;
  trim: Settled<boolean>;
  trimsLogged: number;
  health: Settled<unknown>;
  healthHttp: { status: number; body: { error: string; code: string } };
  monitor: { errors: number; codes: string[]; lastError: string | null };
  prometheus: Settled<{ names: string[]; first: string; second: string; overlapping: string[] }>;
  opentelemetry: Settled<Record<string, number>>;
}

function rejected(s: Settled<unknown>, code: string, message: RegExp) {
  expect(s.ok).toBe(false);
  expect(s.name).toBe('Error');
  expect(s.code).toBe(code);
  expect(s.message).toMatch(message);
}

function servesTheRest(r: Failures, code: string) {
  // The health endpoint answers 500 with the code; it does not hang or drop the connection.
  expect(r.healthHttp).toEqual({ status: 500, body: { error: expect.any(String), code } });
  rejected(r.health, code, /./);
  // The monitor kept going after the first failure.
  expect(r.monitor.errors).toBeGreaterThanOrEqual(3);
  expect(r.monitor.codes).toEqual([code]);
  expect(r.monitor.lastError).toBe(code);
  // Two scrapes: the application's metric is in both, fragstat's gauges in neither, and each
  // scrape counted its one failed snapshot once.
  expect(r.prometheus.ok).toBe(true);
  const { first, second, overlapping } = r.prometheus.value!;
  for (const text of [first, second, ...overlapping]) {
    expect(text).toMatch(/^app_requests_total 3$/m);
    expect(text).not.toMatch(/^fragstat_rss_bytes\{/m);
    expect(text).toMatch(new RegExp(`^fragstat_allocator_info\\{allocator="${r.allocator}",`, 'm'));
  }
  expect(first).toMatch(
    new RegExp(`^fragstat_snapshot_errors_total\\{allocator="${r.allocator}"\\} 1$`, 'm'),
  );
  expect(second).toMatch(
    new RegExp(`^fragstat_snapshot_errors_total\\{allocator="${r.allocator}"\\} 2$`, 'm'),
  );
  // Two scrapes at once share one failed read, and both report the same count.
  for (const text of overlapping) {
    expect(text).toMatch(
      new RegExp(`^fragstat_snapshot_errors_total\\{allocator="${r.allocator}"\\} 3$`, 'm'),
    );
  }
  // OpenTelemetry: the collection happened, without gauges, with the failure counted.
  expect(r.opentelemetry.ok).toBe(true);
  const points = r.opentelemetry.value!;
  expect(points['fragstat.snapshot.errors']).toBe(1);
  expect(points['fragstat.trims']).toBe(r.trimsLogged);
  expect(points['fragstat.rss']).toBeUndefined();
}

describe('an allocator interface that fails', () => {
  it("glibc's malloc_info: detail reads fail with ERR_FRAGSTAT_MALLOC_INFO, the rest works", () => {
    const r = runFixture<Failures>('failures.cjs', {
      nodeArgs: [],
      env: { FRAGSTAT_FAIL_SYMBOLS: 'malloc_info', DETAIL: '1' },
    });
    expect(r.allocator).toBe('glibc');
    expect(r.cheapSnapshot.ok).toBe(true);
    expect(r.cheapSnapshot.value!).toBeGreaterThan(0);
    const msg = /^malloc_info failed: Invalid argument$/;
    rejected(r.snapshot, 'ERR_FRAGSTAT_MALLOC_INFO', msg);
    rejected(r.snapshotAsync, 'ERR_FRAGSTAT_MALLOC_INFO', msg);
    // Trimming does not need malloc_info.
    expect(r.trimSync).toEqual({ ok: true, value: true });
    expect(r.trim).toEqual({ ok: true, value: true });
    expect(r.trimsLogged).toBe(2);
    servesTheRest(r, 'ERR_FRAGSTAT_MALLOC_INFO');
  });

  it.runIf(havePreload('jemalloc'))(
    "jemalloc's mallctl: snapshots and trims fail with ERR_FRAGSTAT_MALLCTL and are not logged as trims",
    () => {
      const r = runFixture<Failures>('failures.cjs', {
        nodeArgs: [],
        preload: 'jemalloc',
        env: { FRAGSTAT_FAIL_SYMBOLS: 'mallctlbymib' },
      });
      expect(r.allocator).toBe('jemalloc');
      const epoch = /^mallctl epoch: Input\/output error$/;
      rejected(r.cheapSnapshot, 'ERR_FRAGSTAT_MALLCTL', epoch);
      rejected(r.snapshot, 'ERR_FRAGSTAT_MALLCTL', epoch);
      rejected(r.snapshotAsync, 'ERR_FRAGSTAT_MALLCTL', epoch);
      const purge = /^mallctl arena\.<all>\.purge: Input\/output error$/;
      rejected(r.trimSync, 'ERR_FRAGSTAT_MALLCTL', purge);
      rejected(r.trim, 'ERR_FRAGSTAT_MALLCTL', purge);
      expect(r.trimsLogged).toBe(0);
      servesTheRest(r, 'ERR_FRAGSTAT_MALLCTL');
    },
  );
});
