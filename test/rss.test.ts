// rssBytes is the process's resident set, the same number the kernel and Node report.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as fragstat from '..';
import { MiB, root, runFixture, systemCommand } from './helpers';

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

interface ForkRun {
  bytes: number;
  childBefore: number;
  childAfter: number;
  childReopened: number;
  childStatmDescriptors: number;
  parentBefore: number;
  parentAfter: number;
  parentReopened: number;
}

describe('the kept /proc/self/statm descriptor', () => {
  const cxx = systemCommand('c++', 'g++');

  // /proc/self is resolved when the file is opened: an inherited descriptor reads the parent.
  // Node cannot fork without exec, so a small C++ program runs native/rss.cc itself.
  it.runIf(cxx !== null)('gives a forked child its own RSS, and leaves the parent its descriptor', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fragstat-fork-'));
    try {
      const bin = path.join(dir, 'fork-rss');
      execFileSync(cxx!, [
        '-O1',
        '-o',
        bin,
        path.join(root, 'test/fixtures/fork-rss.cc'),
        path.join(root, 'native/rss.cc'),
      ]);
      const bytes = 64 * MiB;
      const r = JSON.parse(execFileSync(bin, [String(bytes)], { encoding: 'utf8' })) as ForkRun;
      // The child's figure moves by the bytes the child touched...
      expect(r.childAfter - r.childBefore).toBeGreaterThanOrEqual(0.95 * bytes);
      expect(r.childAfter - r.childBefore).toBeLessThan(bytes + 16 * MiB);
      // ...and is what a fresh open of the file says in the child.
      expect(Math.abs(r.childAfter - r.childReopened)).toBeLessThan(2 * MiB);
      // The inherited descriptor was closed, not leaked beside the child's own.
      expect(r.childStatmDescriptors).toBe(1);
      // The parent never touched those bytes, and still reads itself through its descriptor.
      expect(Math.abs(r.parentAfter - r.parentBefore)).toBeLessThan(8 * MiB);
      expect(Math.abs(r.parentAfter - r.parentReopened)).toBeLessThan(2 * MiB);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is closed when Node unloads the addon, not leaked once per load', () => {
    const { rounds } = runFixture<{
      rounds: { rss: number; mappedWhileLoaded: boolean; statmDescriptors: number; addonMapped: boolean }[];
    }>('unload.cjs', { nodeArgs: [] });
    expect(rounds).toHaveLength(5);
    for (const r of rounds) {
      expect(r.rss).toBeGreaterThan(0);
      expect(r.mappedWhileLoaded).toBe(true);
      expect(r.statmDescriptors).toBe(r.addonMapped ? 1 : 0);
    }
    // Node unloads an addon that only worker threads loaded once the last of them exits: that is
    // the case under test.
    expect(rounds.some((r) => !r.addonMapped)).toBe(true);
  });
});
