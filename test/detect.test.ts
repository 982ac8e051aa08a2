// allocator() names what actually serves malloc, and no report describes glibc's unused heap
// while another allocator runs.
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { AllocatorInfo, Snapshot, TrimResult } from '../src';
import { evalJson, havePreload, preloadPath, type Preload } from './helpers';

interface Probe {
  info: AllocatorInfo;
  snap: Snapshot;
  detail: Snapshot;
  trim: TrimResult;
}

const probe = `process.stdout.write(JSON.stringify({ info: fragstat.allocator(), snap: fragstat.snapshot(),
  detail: fragstat.snapshot({ detail: true }), trim: fragstat.trimSync() }));`;

const glibcFields = ['arena', 'ordblks', 'hblkhd', 'uordblks', 'fordblks', 'keepcost'];

describe('glibc (no preload)', () => {
  it('is detected with its version and every mallinfo2 field', () => {
    const r = evalJson<Probe>(probe);
    expect(r.info).toMatchObject({
      name: 'glibc',
      hasStats: true,
      hasDetail: true,
      canTrim: true,
      trimsThreadArenaTops: true,
      native: true,
    });
    expect(r.info.version).toMatch(/^2\.\d+$/);
    expect(r.info.limitations).toBeNull();
    expect(Object.keys(r.snap.raw)).toEqual([
      'arena',
      'ordblks',
      'smblks',
      'hblks',
      'hblkhd',
      'usmblks',
      'fsmblks',
      'uordblks',
      'fordblks',
      'keepcost',
    ]);
    expect(r.snap.allocatedBytes).toBe(r.snap.raw.uordblks! + r.snap.raw.hblkhd!);
    expect(r.snap.freeBytes).toBe(r.snap.raw.fordblks);
    expect(r.snap.heapBytes).toBe(r.snap.raw.arena! + r.snap.raw.hblkhd!);
    for (const v of Object.values(r.snap.raw)) expect(typeof v).toBe('number');
    expect(r.snap.arenas).toBeNull();
    expect(r.snap.largestFreeBytes).toBeNull();
    expect(r.detail.arenas).toBeGreaterThanOrEqual(1);
    expect(r.detail.detail!.mmapBytes).toBe(r.detail.raw.hblkhd);
    expect(r.trim.supported).toBe(true);
  });
});

const others: { name: Preload; version: RegExp }[] = [
  { name: 'jemalloc', version: /^5\.\d+\.\d+/ },
  { name: 'tcmalloc', version: /gperftools 2\.\d+/ },
  { name: 'mimalloc', version: /^\d+\.\d+\.\d+$/ },
];

for (const { name, version } of others) {
  describe.runIf(havePreload(name))(`${name} (LD_PRELOAD)`, () => {
    it('is detected, and no glibc heap figure is reported as its own', () => {
      const r = evalJson<Probe>(probe, { preload: name });
      expect(r.info.name).toBe(name);
      expect(r.info.version).toMatch(version);
      expect(r.snap.allocator).toBe(name);
      for (const field of glibcFields) expect(r.snap.raw).not.toHaveProperty(field);
      // Every raw field the allocator lists is read.
      expect(Object.keys(r.snap.raw)).toEqual(r.info.rawFields);
      for (const v of Object.values(r.snap.raw)) expect(typeof v).toBe('number');
      expect(r.detail.detail).toBeNull();
      expect(r.detail.largestFreeBytes).toBeNull();
      expect(r.snap.rssBytes!).toBeGreaterThan(10 * 1024 * 1024);
      expect(r.trim.allocator).toBe(name);
    });
  });
}

describe.runIf(havePreload('tcmalloc') && havePreload('jemalloc'))(
  'tcmalloc and jemalloc both preloaded',
  () => {
    for (const order of [
      ['tcmalloc', 'jemalloc'],
      ['jemalloc', 'tcmalloc'],
    ] as const) {
      it(`names the one that serves malloc: the first preloaded (${order.join(', ')})`, () => {
        const r = evalJson<{ info: AllocatorInfo }>(
          `process.stdout.write(JSON.stringify({ info: fragstat.allocator() }))`,
          {
            env: { LD_PRELOAD: order.map((name) => preloadPath(name)).join(':') },
          },
        );
        expect(r.info.name).toBe(order[0]);
      });
    }
  },
);

describe('nothing known (every allocator symbol hidden, as on musl)', () => {
  it('loads, says why, reports RSS and nulls, and does not trim', () => {
    const r = evalJson<Probe>(probe, { env: { FRAGSTAT_HIDE_SYMBOLS: '*' } });
    expect(r.info).toMatchObject({
      name: 'unknown',
      version: null,
      hasStats: false,
      canTrim: false,
      trimsThreadArenaTops: false,
      native: true,
    });
    expect(r.info.limitations).toMatch(/no supported allocator/);
    expect(r.snap.rssBytes!).toBeGreaterThan(10 * 1024 * 1024);
    for (const key of [
      'allocatedBytes',
      'freeBytes',
      'heapBytes',
      'largestFreeBytes',
      'arenas',
      'statsAgeMs',
    ] as const) {
      expect(r.snap[key]).toBeNull();
      expect(r.detail[key]).toBeNull();
    }
    expect(r.snap.ratios).toEqual({
      fragmentation: null,
      external: null,
      rss: null,
      residentFragmentation: null,
    });
    expect(r.snap.raw).toEqual({});
    expect(typeof r.trim.timestamp).toBe('number');
    expect({ ...r.trim, timestamp: 0 }).toEqual({
      allocator: 'unknown',
      timestamp: 0,
      supported: false,
      rssBeforeBytes: null,
      rssAfterBytes: null,
      releasedBytes: null,
      durationMs: null,
      returnValue: null,
      blockingMs: null,
      threadArenaTopBytes: null,
      threadArenasPending: null,
    });
  });
});

describe.runIf(havePreload('mimalloc'))('an allocator the probes do not recognise', () => {
  it('is not mistaken for glibc (whose heap does not move) and reports RSS only', () => {
    // mimalloc serves malloc, but its probe symbol is hidden: fragstat must not describe glibc's unused heap.
    const r = evalJson<Probe>(probe, {
      preload: 'mimalloc',
      env: { FRAGSTAT_HIDE_SYMBOLS: 'mi_is_in_heap_region' },
    });
    expect(r.info.name).toBe('unknown');
    expect(r.info.limitations).toMatch(/does not recognise/);
    expect(r.snap.allocatedBytes).toBeNull();
    expect(r.snap.raw).toEqual({});
    expect(r.snap.rssBytes!).toBeGreaterThan(10 * 1024 * 1024);
    expect(r.trim.supported).toBe(false);
  });
});

describe('FRAGSTAT_ARENA_TOPS=0', () => {
  it('turns the thread-arena top step of a glibc trim off, and says so', () => {
    const r = evalJson<Probe>(probe, { env: { FRAGSTAT_ARENA_TOPS: '0' } });
    expect(r.info).toMatchObject({ name: 'glibc', canTrim: true, trimsThreadArenaTops: false });
    expect(r.trim.supported).toBe(true);
    expect(r.trim.threadArenaTopBytes).toBeNull();
  });
});

describe('test hooks', () => {
  it('FRAGSTAT_HIDE_SYMBOLS and FRAGSTAT_FAIL_SYMBOLS do nothing without FRAGSTAT_TEST_HOOKS=1', () => {
    const r = evalJson<Probe>(probe, {
      env: { FRAGSTAT_HIDE_SYMBOLS: '*', FRAGSTAT_FAIL_SYMBOLS: 'malloc_info', FRAGSTAT_TEST_HOOKS: '' },
    });
    expect(r.info).toMatchObject({ name: 'glibc', hasStats: true, hasDetail: true, canTrim: true });
    expect(r.detail.detail!.arenas.length).toBeGreaterThanOrEqual(1);
  });
});

// glibc's debugging malloc (in Debian's libc6). With checking on, it serves malloc from its own
// copy of the allocator and describes it only through its own versioned mallinfo2.
const mallocDebug = [
  '/usr/lib/x86_64-linux-gnu',
  '/lib/x86_64-linux-gnu',
  '/usr/lib/aarch64-linux-gnu',
  '/lib/aarch64-linux-gnu',
  '/usr/lib64',
  '/lib64',
]
  .map((d) => `${d}/libc_malloc_debug.so.0`)
  .find((f) => existsSync(f));

describe.runIf(mallocDebug !== undefined)('glibc under libc_malloc_debug.so', () => {
  const moved = `const before = fragstat.snapshot().allocatedBytes;
    const keep = Array.from({ length: 400 }, () => Buffer.alloc(65536, 1));
    const after = fragstat.snapshot().allocatedBytes;
    process.stdout.write(JSON.stringify({ info: fragstat.allocator(), moved: after - before, n: keep.length,
      detail: fragstat.snapshot({ detail: true }), trim: fragstat.trimSync() }));`;
  for (const [what, env] of [
    ['checking off', {}],
    ['MALLOC_CHECK_=3', { MALLOC_CHECK_: '3' }],
    ['glibc.malloc.check=3', { GLIBC_TUNABLES: 'glibc.malloc.check=3' }],
  ] as const) {
    it(`is reported as glibc, and its figures move with malloc (${what})`, () => {
      const r = evalJson<Probe & { moved: number }>(moved, {
        env: { ...env, LD_PRELOAD: mallocDebug! },
      });
      expect(r.info).toMatchObject({ name: 'glibc', hasStats: true, canTrim: true });
      // 400 Buffers of 64 KiB: 25 MiB more live bytes, give or take what else ran meanwhile (V8
      // may free what loading the modules allocated: a few hundred KiB were seen).
      expect(r.moved).toBeGreaterThanOrEqual(0.97 * 400 * 65536);
      expect(r.moved).toBeLessThan(400 * 65536 + 1024 * 1024);
      expect(r.detail.detail!.arenas.length).toBeGreaterThanOrEqual(1);
      expect(r.trim.supported).toBe(true);
    });
  }
});

describe('glibc with entry points missing', () => {
  it('falls back to mallinfo when mallinfo2 is absent (glibc < 2.33) and flags possible wrap', () => {
    const r = evalJson<Probe>(probe, { env: { FRAGSTAT_HIDE_SYMBOLS: 'mallinfo2' } });
    expect(r.info.name).toBe('glibc');
    expect(r.info.limitations).toMatch(/mallinfo2 is missing/);
    expect(r.snap.mayHaveWrapped).toBe(true);
    expect(r.snap.allocatedBytes!).toBeGreaterThan(0);
    expect(r.snap.freeBytes).toBe(r.snap.raw.fordblks);
  });

  it('reports no detail without malloc_info and no trim without malloc_trim', () => {
    const r = evalJson<Probe>(probe, { env: { FRAGSTAT_HIDE_SYMBOLS: 'malloc_info,malloc_trim' } });
    expect(r.info).toMatchObject({ name: 'glibc', hasDetail: false, canTrim: false });
    expect(r.detail.detail).toBeNull();
    expect(r.detail.largestFreeBytes).toBeNull();
    expect(r.detail.allocatedBytes!).toBeGreaterThan(0);
    expect(r.trim.supported).toBe(false);
    expect(r.snap.mayHaveWrapped).toBe(false);
  });
});

describe('compiled addon missing (a libc with no prebuild and no build, as on Alpine without a compiler)', () => {
  it('still loads, says why, and reports RSS only', () => {
    const r = evalJson<Probe>(probe, { env: { PREBUILDS_ONLY: '1', LIBC: 'musl' } });
    expect(r.info).toMatchObject({ name: 'unknown', native: false, hasStats: false, canTrim: false });
    // Why (no prebuild for this libc), and what to do: the build tools, and the command.
    expect(r.info.limitations).toMatch(/no prebuilt addon fits this system \(.*libc=musl/);
    expect(r.info.limitations).toMatch(/Alpine: apk add build-base python3/);
    expect(r.info.limitations).toMatch(/"npx node-gyp rebuild" in \S+\/native$/);
    expect(r.snap.rssBytes!).toBeGreaterThan(10 * 1024 * 1024);
    expect(r.snap.allocatedBytes).toBeNull();
    expect(r.detail.detail).toBeNull();
    expect(r.trim.supported).toBe(false);
  });
});
