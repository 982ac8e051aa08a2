// rssBytes is the process's resident set, the same number the kernel and Node report.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as fragstat from '..';
import { MiB } from './helpers';

const vmRss = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;

describe('rssBytes', () => {
  it('matches /proc/self/status and process.memoryUsage.rss()', () => {
    const a = vmRss();
    const s = fragstat.snapshot();
    const b = process.memoryUsage.rss();
    expect(Math.abs(s.rssBytes! - a)).toBeLessThan(2 * MiB);
    expect(Math.abs(s.rssBytes! - b)).toBeLessThan(2 * MiB);
  });

  it('rises by the bytes a Buffer touches', async () => {
    const before = (await fragstat.snapshotAsync()).rssBytes!;
    const buf = Buffer.alloc(96 * MiB, 1);
    const after = (await fragstat.snapshotAsync()).rssBytes!;
    expect(after - before).toBeGreaterThanOrEqual(0.95 * buf.length);
    expect(after - before).toBeLessThan(buf.length + 16 * MiB);
  });

  it('is stamped with the time it was taken', async () => {
    const t0 = Date.now();
    const s = fragstat.snapshot();
    const a = await fragstat.snapshotAsync();
    expect(s.timestamp).toBeGreaterThanOrEqual(t0);
    expect(a.timestamp).toBeGreaterThanOrEqual(s.timestamp);
    expect(a.timestamp).toBeLessThanOrEqual(Date.now());
  });
});
