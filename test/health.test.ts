// health() and healthHandler(), served by real node:http, Express and Fastify servers on loopback.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';
import * as fragstat from '..';
import type { HealthReport } from '..';

const servers: { close(): unknown }[] = [];
afterAll(async () => {
  for (const s of servers) await s.close();
});

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push({ close: () => new Promise((r) => server.close(r)) });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function checkReport(r: HealthReport) {
  expect(['ok', 'warn', 'critical']).toContain(r.status);
  expect(r.allocator).toBe('glibc');
  expect(r.rssBytes!).toBeGreaterThan(10 * 1024 * 1024);
  expect(r.allocatedBytes!).toBeGreaterThan(0);
  expect(r.heapBytes).toBe(r.allocatedBytes! + r.freeBytes!);
  expect(Array.isArray(r.findings)).toBe(true);
  // JSON-safe: nothing is lost in a round trip.
  expect(JSON.parse(JSON.stringify(r))).toEqual(r);
}

describe('health()', () => {
  it('summarises a snapshot and the doctor, and reports the last trim', async () => {
    const t = await fragstat.trim();
    const r = await fragstat.health();
    checkReport(r);
    expect(r.trims).toBeGreaterThanOrEqual(1);
    expect(r.lastTrim).toEqual({
      timestamp: t.timestamp,
      releasedBytes: t.releasedBytes,
      durationMs: t.durationMs,
    });
    expect(r.status).toBe(
      r.findings.some((f) => f.severity === 'critical')
        ? 'critical'
        : r.findings.some((f) => f.severity === 'warn')
          ? 'warn'
          : 'ok',
    );
  });
});

describe('health() breakdown and verdict', () => {
  it("carries RSS by owner, parts adding up to RSS, and a running monitor's verdict", async () => {
    const r = await fragstat.health();
    expect(r.breakdown).not.toBeNull();
    const sum = Object.values(r.breakdown!.parts).reduce((a, x) => a + x, 0);
    expect(sum).toBe(r.breakdown!.rssBytes);
    expect(r.breakdown!.parts.code).toBeGreaterThan(10 * 1024 * 1024);
    expect(r.verdict).toBeNull();
    const m = fragstat.monitor({ intervalMs: 10_000 });
    try {
      await new Promise((resolve) => m.once('sample', resolve));
      const withMonitor = await fragstat.health();
      expect(withMonitor.verdict).toEqual({
        kind: 'insufficient-evidence',
        title: m.verdict().title,
        confidence: 'low',
      });
      // The breakdown is not read again within the minute: the same one, older.
      expect(withMonitor.breakdown!.rssBytes).toBe(r.breakdown!.rssBytes);
      expect(withMonitor.breakdown!.ageMs).toBeGreaterThanOrEqual(r.breakdown!.ageMs);
    } finally {
      m.stop();
    }
    expect((await fragstat.health({ breakdown: false })).breakdown).toBeNull();
    await expect(fragstat.health({ breakdown: 1 as never })).rejects.toThrow(TypeError);
  });
});

describe('healthHandler() on node:http', () => {
  it('answers GET with the report, refuses POST unless trimming is allowed', async () => {
    const base = await listen(http.createServer(fragstat.healthHandler()));
    const get = await fetch(base);
    expect(get.status).toBe(200);
    expect(get.headers.get('content-type')).toMatch(/application\/json/);
    expect(get.headers.get('cache-control')).toBe('no-store');
    checkReport((await get.json()) as HealthReport);
    const post = await fetch(base, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('trims on POST when allowed, at most once per interval (429 with Retry-After)', async () => {
    const base = await listen(
      http.createServer(fragstat.healthHandler({ allowTrim: true, trimMinIntervalMs: 60_000 })),
    );
    const first = await fetch(base, { method: 'POST' });
    expect(first.status).toBe(200);
    const result = (await first.json()) as fragstat.TrimResult;
    expect(result.supported).toBe(true);
    expect(result.releasedBytes).toBe(result.rssBeforeBytes! - result.rssAfterBytes!);
    const second = await fetch(base, { method: 'POST' });
    expect(second.status).toBe(429);
    expect(Number(second.headers.get('retry-after'))).toBeGreaterThanOrEqual(59);
  });

  it('with trimMinIntervalMs: Infinity, trims once and then answers 429 without a Retry-After', async () => {
    const base = await listen(
      http.createServer(fragstat.healthHandler({ allowTrim: true, trimMinIntervalMs: Infinity })),
    );
    expect((await fetch(base, { method: 'POST' })).status).toBe(200);
    const second = await fetch(base, { method: 'POST' });
    expect(second.status).toBe(429);
    expect(second.headers.get('retry-after')).toBeNull();
    expect(await second.json()).toEqual({ error: 'a trim ran recently', retryAfterSeconds: null });
  });

  it('validates its options', () => {
    expect(() => fragstat.healthHandler({ allowTrim: 'yes' } as never)).toThrow(TypeError);
    expect(() => fragstat.healthHandler({ criticalStatusCode: 42 })).toThrow(RangeError);
    expect(() => fragstat.healthHandler({ trim: true } as never)).toThrow(/Unknown option "trim"/);
  });
});

describe('Express', () => {
  it('serves the report as a route handler', async () => {
    const app = express();
    app.get('/health/memory', fragstat.healthHandler());
    const base = await listen(http.createServer(app));
    const res = await fetch(`${base}/health/memory`);
    expect(res.status).toBe(200);
    checkReport((await res.json()) as HealthReport);
  });
});

describe('Fastify', () => {
  it('serves health() from an async route', async () => {
    const app = Fastify();
    app.get('/health/memory', async () => fragstat.health());
    const address = await app.listen({ port: 0, host: '127.0.0.1' });
    servers.push(app);
    const res = await fetch(`${address}/health/memory`);
    expect(res.status).toBe(200);
    checkReport((await res.json()) as HealthReport);
  });
});
