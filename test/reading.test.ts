// What HTTP can make fragstat do: health() and the exporters serve one shared reading, taken at
// most once per interval (stretched when readings are slow) or taken from a running monitor,
// never one walk of the heap per request.
import client from 'prom-client';
import { describe, expect, it } from 'vitest';
import * as fragstat from '..';
import { MiB } from './helpers';

// Buffers kept alive for the whole file, so no GC moves the figures between two tests.
const held: Buffer[] = [];

describe('the shared reading', () => {
  it('a burst of health() calls takes one reading, and later calls say it is cached and how old', async () => {
    // Without the breakdown: its smaps read allocates (and then frees) buffers while the reading is
    // taken, which would blur the byte comparison below.
    const reports = await Promise.all(
      Array.from({ length: 50 }, () => fragstat.health({ breakdown: false })),
    );
    const taken = new Set(reports.map((r) => r.timestamp));
    expect(taken.size).toBe(1);
    expect(reports.every((r) => r.source === 'fresh' || r.source === 'cache')).toBe(true);
    await new Promise((r) => setTimeout(r, 50));
    // 64 MiB more live bytes now: a reading per call would see them, the cached one does not.
    // (Measured from a snapshot right before: since the first reports, V8 has been freeing the
    // garbage of fifty health() calls on a background thread, 1.6 MiB of it once.)
    const before = fragstat.snapshot().allocatedBytes!;
    const keep = Buffer.alloc(64 * MiB, 1);
    held.push(keep);
    const later = await fragstat.health({ breakdown: false });
    expect(later.source).toBe('cache');
    expect(later.timestamp).toBe(reports[0].timestamp);
    expect(later.allocatedBytes).toBe(reports[0].allocatedBytes);
    expect(later.ageMs).toBeGreaterThanOrEqual(50);
    expect(later.readingIntervalMs).toBeGreaterThanOrEqual(1000);
    // (V8 may free earlier backing stores in the background meanwhile: 1 MiB of slack.)
    expect(fragstat.snapshot().allocatedBytes! - before).toBeGreaterThanOrEqual(keep.length - 1024 * 1024);
  });

  it('a running monitor is the source: health and metrics serve its latest sample', async () => {
    const m = fragstat.monitor({ intervalMs: 60_000 });
    try {
      const sample = await new Promise<fragstat.Sample>((r) => m.once('sample', r));
      const before = fragstat.snapshot().allocatedBytes!;
      const keep = Buffer.alloc(32 * MiB, 1);
      held.push(keep);
      const h = await fragstat.health();
      expect(h.source).toBe('monitor');
      expect(h.timestamp).toBe(sample.timestamp);
      expect(h.allocatedBytes).toBe(sample.allocatedBytes);
      // Without this sample's walk cost in it, the interval could not be below this.
      expect(h.readingIntervalMs).toBeGreaterThanOrEqual(sample.durationMs / 0.002);

      const registry = new client.Registry();
      fragstat.registerPrometheus(registry, { cacheMs: 0 });
      const text = await registry.metrics();
      const value = (name: string) => Number(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'm').exec(text)![1]);
      expect(value('fragstat_allocated_bytes')).toBe(sample.allocatedBytes);
      expect(value('fragstat_reading_age_seconds')).toBeGreaterThanOrEqual(0);
      // (Less 1 MiB: the health report's smaps read and V8's background frees move a few KiB.)
      expect(fragstat.snapshot().allocatedBytes! - before).toBeGreaterThanOrEqual(keep.length - 1024 * 1024);
    } finally {
      m.stop();
    }
  });

  it('a slow reading stretches the interval to 500 times its duration (0.2% of wall time)', async () => {
    // About 100k free chunks: a glibc reading walks each of them.
    const bufs: (Buffer | null)[] = Array.from({ length: 200_000 }, () => Buffer.alloc(128, 1));
    for (let i = 1; i < bufs.length; i += 2) bufs[i] = null;
    const m = fragstat.monitor({ intervalMs: 60_000 });
    try {
      const sample = await new Promise<fragstat.Sample>((r) => m.once('sample', r));
      const h = await fragstat.health();
      expect(h.readingIntervalMs).toBe(Math.max(1000, sample.durationMs / 0.002));
    } finally {
      m.stop();
      bufs.length = 0;
    }
  });
});
