// The checks a user would make by hand: allocate a known number of bytes through Buffers, see the
// allocator's figures move by that much; free half of them interleaved, see free memory and
// fragmentation rise; trim, see RSS fall by what trim() says it released.
import { describe, expect, it } from 'vitest';
import type { Snapshot, TrimResult, AllocatorInfo } from '../src';
import { havePreload, runFixture } from './helpers';

interface Run {
  count: number;
  size: number;
  kept: number;
  allocator: AllocatorInfo;
  before: Snapshot;
  allocated: Snapshot;
  halfFreed: Snapshot;
  trim: TrimResult;
  trimmed: Snapshot;
}

const total = (r: Run) => r.count * r.size; // 64 MiB by default
const freed = (r: Run) => (r.count - r.kept) * r.size; // 32 MiB

function expectNear(actual: number | null, expected: number, low: number, high: number) {
  expect(actual).not.toBeNull();
  expect(actual!).toBeGreaterThanOrEqual(expected * low);
  expect(actual!).toBeLessThanOrEqual(expected * high);
}

function checkAccounting(r: Run) {
  // Buffers of 64 KiB come from the heap; headers and the runtime's own work add a little.
  expectNear(r.allocated.allocatedBytes! - r.before.allocatedBytes!, total(r), 0.97, 1.1);
  expectNear(r.allocated.allocatedBytes! - r.halfFreed.allocatedBytes!, freed(r), 0.9, 1.1);
  expectNear(r.halfFreed.freeBytes! - r.allocated.freeBytes!, freed(r), 0.9, 1.15);
  expect(r.halfFreed.heapBytes).toBe(r.halfFreed.allocatedBytes! + r.halfFreed.freeBytes!);
  expect(r.halfFreed.ratios.fragmentation).toBeCloseTo(r.halfFreed.freeBytes! / r.halfFreed.heapBytes!, 12);
  expect(r.halfFreed.ratios.fragmentation!).toBeGreaterThan(0.4);
  expect(r.halfFreed.ratios.fragmentation!).toBeGreaterThan(r.allocated.ratios.fragmentation! + 0.3);
  expect(r.halfFreed.ratios.rss).toBeCloseTo(r.halfFreed.rssBytes! / r.halfFreed.allocatedBytes!, 12);
}

function checkTrim(r: Run) {
  expect(r.trim.supported).toBe(true);
  expect(r.trim.releasedBytes).toBe(r.trim.rssBeforeBytes! - r.trim.rssAfterBytes!);
  // Freed 64 KiB holes lose at most a page or two at their edges to page alignment.
  expectNear(r.trim.releasedBytes, freed(r), 0.75, 1.2);
  expect(r.trimmed.rssBytes!).toBeLessThan(r.halfFreed.rssBytes! - 0.7 * freed(r));
  expect(r.trim.durationMs!).toBeGreaterThan(0);
}

describe('glibc', () => {
  for (const mode of ['sync', 'async'] as const) {
    it(`accounts for allocated, freed and trimmed Buffers (${mode})`, () => {
      const r = runFixture<Run>('bytes.cjs', { env: { ASYNC: mode === 'async' ? '1' : '0' } });
      expect(r.allocator.name).toBe('glibc');
      checkAccounting(r);
      // Half the Buffers freed one in two: the largest free chunk is about one Buffer, so the
      // free memory is scattered (external ratio near 1).
      expect(r.halfFreed.largestFreeBytes!).toBeGreaterThanOrEqual(r.size);
      expect(r.halfFreed.largestFreeBytes!).toBeLessThan(0.1 * r.halfFreed.freeBytes!);
      expect(r.halfFreed.ratios.external!).toBeGreaterThan(0.9);
      expect(r.halfFreed.arenas).toBe(r.halfFreed.detail!.arenas.length);
      // The detail walk and mallinfo2 describe the same heap (other runtime threads may move it a little).
      const arenaFree = r.halfFreed.detail!.arenas.reduce((s, a) => s + a.freeBytes, 0);
      expect(Math.abs(arenaFree - r.halfFreed.freeBytes!)).toBeLessThanOrEqual(64 * 1024);
      checkTrim(r);
      expect(r.trim.returnValue).toBe(1);
      // mallinfo2 ignores madvise: the trimmed chunks still count as free.
      expectNear(r.trimmed.freeBytes, r.halfFreed.freeBytes!, 0.95, 1.05);
    });
  }
});

describe.runIf(havePreload('jemalloc'))('jemalloc (LD_PRELOAD)', () => {
  it('accounts for allocated, freed and purged Buffers', () => {
    const r = runFixture<Run>('bytes.cjs', { preload: 'jemalloc' });
    expect(r.allocator.name).toBe('jemalloc');
    checkAccounting(r);
    expect(r.halfFreed.largestFreeBytes).toBeNull();
    expect(r.halfFreed.ratios.external).toBeNull();
    expect(r.halfFreed.detail).toBeNull();
    expect(r.halfFreed.arenas!).toBeGreaterThanOrEqual(1);
    expect(r.halfFreed.raw['stats.allocated']).toBe(r.halfFreed.allocatedBytes);
    checkTrim(r);
    expect(r.trim.returnValue).toBeNull();
    // Purged pages leave jemalloc's footprint, unlike glibc's free chunks.
    expect(r.trimmed.freeBytes!).toBeLessThan(r.halfFreed.freeBytes! - 0.75 * freed(r));
  });
});
