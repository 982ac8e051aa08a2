// RSS broken down by owner: the parts add up to RSS, and each part moves by what a fixture
// allocates: Buffers into mallocLive, freed holes into mallocFreeResident (and out again with a
// trim), JS objects into v8Heap; under every allocator.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { AllocatorInfo, Breakdown, Snapshot, TrimResult } from '../src';
import { parseSmaps } from '../src/read/smaps';
import { composeBreakdown } from '../src/read/breakdown';
import { havePreload, MiB, runFixtureAsync, type Preload } from './helpers';

interface Step {
  name: 'idle' | 'buffers' | 'holes' | 'trimmed' | 'objects' | 'zlib';
  statmBefore: number;
  breakdown: Breakdown;
  detail: Snapshot;
  trim?: TrimResult;
}
interface Run {
  allocator: AllocatorInfo;
  steps: Step[];
}

// How far smaps's exact sum may stray from statm's RSS read around it: 1%, at least 2 MiB. statm
// reads the kernel's per-mm counters, which are per-CPU batched (Linux 6.2+; per-thread caches of
// up to 64 pages before), and memory moves both ways while smaps is walked: on a 90 MB test
// process the sum once stood 1.5 MB above both statm reads around an async walk.
const statmSlack = (rss: number) => Math.max(0.01 * rss, 2 * MiB);

const step = (r: Run, name: Step['name']) => r.steps.find((s) => s.name === name)!;
const sum = (b: Breakdown) => Object.values(b.parts).reduce((a, x) => a + x, 0);
const delta = (r: Run, from: Step['name'], to: Step['name'], part: keyof Breakdown['parts']) =>
  step(r, to).breakdown.parts[part] - step(r, from).breakdown.parts[part];

function checkCommon(r: Run) {
  for (const s of r.steps) {
    const b = s.breakdown;
    // The parts add up to RSS exactly, and RSS is the one statm gives at the same moment: within
    // the range statm gave just before and just after the mappings were walked, give or take
    // statmSlack (memory moves both ways during the walk, and statm's counters are approximate).
    expect(sum(b)).toBe(b.rssBytes);
    const lo = Math.min(b.snapshot.rssBytes!, b.rssAfterBytes!);
    const hi = Math.max(b.snapshot.rssBytes!, b.rssAfterBytes!);
    const seen = JSON.stringify({ step: s.name, smaps: b.rssBytes, statm: [lo, hi] });
    expect(b.rssBytes, seen).toBeGreaterThan(lo - statmSlack(lo));
    expect(b.rssBytes, seen).toBeLessThan(hi + statmSlack(hi));
    for (const v of Object.values(b.parts)) expect(v).toBeGreaterThanOrEqual(0);
    // Every resident byte has an owner: what no one claims is a small share.
    expect(
      b.parts.other / b.rssBytes,
      JSON.stringify({ step: s.name, parts: b.parts, partial: b.partial, raw: b.snapshot.raw }),
    ).toBeLessThan(0.05);
    expect(b.parts.code).toBeGreaterThan(10 * MiB); // node itself
  }
  // 64 MiB of Buffers show up as live malloc memory; V8's heap moves little.
  const live = delta(r, 'idle', 'buffers', 'mallocLive');
  expect(live).toBeGreaterThan(60 * MiB);
  expect(live).toBeLessThan(72 * MiB);
  expect(Math.abs(delta(r, 'idle', 'buffers', 'v8Heap'))).toBeLessThan(8 * MiB);
  // A million JS objects land in V8's heap, not in malloc's live bytes.
  expect(delta(r, 'trimmed', 'objects', 'v8Heap')).toBeGreaterThan(60 * MiB);
  // (mimalloc's live figure is what it has committed, which V8's own mallocs during GC move.)
  if (!step(r, 'idle').breakdown.partial.includes('mallocLive')) {
    expect(Math.abs(delta(r, 'trimmed', 'objects', 'mallocLive'))).toBeLessThan(8 * MiB);
  }
}

function checkHolesAndTrim(r: Run, freedLow: number) {
  // Freeing every other Buffer (32 MiB) turns live bytes into free resident ones...
  expect(delta(r, 'buffers', 'holes', 'mallocLive')).toBeLessThan(-28 * MiB);
  expect(delta(r, 'buffers', 'holes', 'mallocFreeResident')).toBeGreaterThan(freedLow);
  // ...which a trim gives back: the free resident figure falls by what RSS fell.
  const t = step(r, 'trimmed').trim!;
  expect(t.releasedBytes!).toBeGreaterThan(24 * MiB);
  const fell = -delta(r, 'holes', 'trimmed', 'mallocFreeResident');
  expect(fell).toBeGreaterThan(t.releasedBytes! * 0.85);
  expect(fell).toBeLessThan(t.releasedBytes! * 1.15);
}

describe('parseSmaps', () => {
  it('reads every mapping with its resident bytes, adding up to the rollup', () => {
    // The rollup read just before and just after the walk: this process's memory moves in between
    // (a GC on another thread), so the total is held to 1% of that range, not of one end of it.
    const rollup = () =>
      Number(/^Rss:\s+(\d+) kB/m.exec(readFileSync('/proc/self/smaps_rollup', 'latin1'))![1]) * 1024;
    const before = rollup();
    const text = readFileSync('/proc/self/smaps', 'latin1');
    const after = rollup();
    const { maps, pageSize } = parseSmaps(text);
    const total = maps.reduce((a, m) => a + m.rssBytes, 0);
    const range = JSON.stringify({ total, before, after });
    expect(total, range).toBeGreaterThan(Math.min(before, after) - statmSlack(before));
    expect(total, range).toBeLessThan(Math.max(before, after) + statmSlack(after));
    expect(pageSize).toBeGreaterThanOrEqual(4096);
    expect(maps.some((m) => m.path === '[stack]')).toBe(true);
    expect(maps.some((m) => m.path.endsWith('/node') || m.path.includes('node'))).toBe(true);
    for (const m of maps) {
      expect(m.end).toBeGreaterThan(m.start);
      expect(m.rssBytes).toBeLessThanOrEqual(m.end - m.start);
      expect(m.perms).toMatch(/^[r-][w-][x-][ps]$/);
    }
  });

  it('keeps paths with spaces and marks deleted files as files', () => {
    const text =
      '7f0000000000-7f0000001000 r--p 00000000 08:01 42                         /tmp/a b (deleted)\n' +
      'Rss:                   4 kB\nAnonymous:             0 kB\nKernelPageSize:        4 kB\n' +
      '7f0000002000-7f0000005000 rw-p 00000000 00:00 0 \nRss:                  12 kB\nAnonymous:            12 kB\n';
    const { maps } = parseSmaps(text);
    expect(maps).toEqual([
      {
        start: 0x7f0000000000,
        end: 0x7f0000001000,
        perms: 'r--p',
        path: '/tmp/a b (deleted)',
        rssBytes: 4096,
        anonymousBytes: 0,
      },
      {
        start: 0x7f0000002000,
        end: 0x7f0000005000,
        perms: 'rw-p',
        path: '',
        rssBytes: 12288,
        anonymousBytes: 12288,
      },
    ]);
  });
});

describe('composeBreakdown', () => {
  it('never lets books larger than the page tables push a part below zero', () => {
    const smaps = parseSmaps(
      '1000-100000 rw-p 00000000 00:00 0 \nRss:   1000 kB\n' +
        '7f0000000000-7f0000100000 r-xp 00000000 08:01 42   /usr/bin/node\nRss:   500 kB\n',
    );
    const snap = {
      allocator: 'jemalloc',
      timestamp: 1,
      rssBytes: 1500 * 1024,
      allocatedBytes: 5000 * 1024,
      residentFreeBytes: 100 * 1024,
      heapBytes: null,
      raw: { 'stats.metadata': 50 * 1024 },
    } as unknown as Snapshot;
    const b = composeBreakdown(smaps, snap, 400 * 1024);
    expect(b.parts).toEqual({
      v8Heap: 400 * 1024,
      mallocFreeResident: 100 * 1024,
      allocatorOverhead: 50 * 1024,
      mallocLive: 450 * 1024,
      code: 500 * 1024,
      stacks: 0,
      other: 0,
    });
    expect(sum(b as Breakdown)).toBe(b.rssBytes);
  });
});

describe('composeBreakdown under glibc', () => {
  it('counts arena memory outside [heap] (brk blocked, the main arena went on in mmaps) from the books, and says so', () => {
    // [heap] holds 8 MiB (all resident); glibc's arenas hold 72 MiB with 60 MiB live, so 64 MiB
    // of arena lives in anonymous mappings no header marks (here one of 64 MiB, all resident).
    const smaps = parseSmaps(
      '1000000-1800000 rw-p 00000000 00:00 0          [heap]\nRss:   8192 kB\n' +
        '7e0000000000-7e0004000000 rw-p 00000000 00:00 0 \nRss:   65536 kB\n' +
        '7f0000000000-7f0002000000 r-xp 00000000 08:01 42   /usr/bin/node\nRss:   32768 kB\n',
    );
    const snap = {
      allocator: 'glibc',
      timestamp: 1,
      rssBytes: 104 * MiB,
      allocatedBytes: 60 * MiB,
      residentFreeBytes: null,
      heapBytes: 72 * MiB,
      raw: { arena: 72 * MiB, uordblks: 60 * MiB, hblks: 0, hblkhd: 0 },
    } as unknown as Snapshot;
    const b = composeBreakdown(smaps, snap, 2 * MiB);
    expect(b.parts.code).toBe(32 * MiB);
    expect(b.parts.v8Heap).toBe(2 * MiB);
    // 8 MiB live in [heap], the other 52 MiB of live bytes from the books, out of the anonymous rest.
    expect(b.parts.mallocLive).toBe(60 * MiB);
    expect(b.parts.other).toBe(10 * MiB);
    expect(b.partial).toEqual(['mallocFreeResident']);
    expect(sum(b as Breakdown)).toBe(b.rssBytes);
  });
});

describe('glibc', () => {
  for (const mode of ['sync', 'async']) {
    // Up to 30 s on a loaded machine: a child that does not block this process (runFixtureAsync).
    it(`splits RSS by owner and follows allocations, holes and a trim (${mode})`, async () => {
      const r = await runFixtureAsync<Run>('breakdown.cjs', {
        env: { ASYNC: mode === 'async' ? '1' : '0' },
        timeoutMs: 120_000,
      });
      expect(r.allocator.name).toBe('glibc');
      expect(step(r, 'idle').breakdown.partial).toEqual([]);
      checkCommon(r);
      checkHolesAndTrim(r, 28 * MiB);
      // The snapshot's resident free figure follows the trim; glibc's own free counter does not.
      const holes = step(r, 'holes').detail;
      const trimmed = step(r, 'trimmed').detail;
      expect(holes.residentFreeBytes! - trimmed.residentFreeBytes!).toBeGreaterThan(24 * MiB);
      expect(Math.abs(holes.freeBytes! - trimmed.freeBytes!)).toBeLessThan(4 * MiB);
      expect(trimmed.ratios.residentFragmentation!).toBeLessThan(holes.ratios.residentFragmentation! - 0.2);
      // ratios.rss is the allocator's RAM per live byte.
      expect(holes.ratios.rss).toBeCloseTo(
        (holes.allocatedBytes! + holes.residentFreeBytes!) / holes.allocatedBytes!,
        12,
      );
    }, 150_000);
  }
});

const others: { name: Preload; partial: string[] }[] = [
  { name: 'jemalloc', partial: [] },
  { name: 'tcmalloc', partial: [] },
  { name: 'mimalloc', partial: ['mallocLive', 'mallocFreeResident', 'allocatorOverhead'] },
];

for (const { name, partial } of others) {
  describe.skipIf(!havePreload(name))(name, () => {
    it('splits RSS by owner and follows allocations', async () => {
      const r = await runFixtureAsync<Run>('breakdown.cjs', {
        preload: name,
        env: { ASYNC: '1' },
        timeoutMs: 120_000,
      });
      expect(r.allocator.name).toBe(name);
      expect(step(r, 'idle').breakdown.partial).toEqual(partial);
      checkCommon(r);
      if (name !== 'mimalloc') {
        expect(step(r, 'idle').breakdown.parts.allocatorOverhead).toBeGreaterThan(0);
        expect(step(r, 'idle').detail.residentFreeBytes).not.toBeNull();
      }
    }, 150_000);
  });
}
