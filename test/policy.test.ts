// The auto-trim policy: its gates and triggers as arithmetic (TrimPolicy), and in a child process
// the two things a user can check by hand: a burst followed by quiet gets trimmed within seconds,
// and a monitor's arena cap keeps new threads from getting arenas of their own.
import { availableParallelism } from 'node:os';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as fragstat from '..';
import type { MonitorStats, Tunable } from '..';
import { limitScale, readTrimOptions, TrimPolicy, type PolicySample } from '../src/cure/policy';
import { MiB, runFixture } from './helpers';

const policy = (o: object = {}) => new TrimPolicy(readTrimOptions(o)!);
const sample = (rss: number, allocated: number, free: number): PolicySample => ({
  rssBytes: rss,
  allocatedBytes: allocated,
  freeBytes: free,
  residentFreeBytes: null,
  ratios: {
    fragmentation: free / (allocated + free),
    external: null,
    rss: null,
    residentFragmentation: null,
  },
  v8HeapBytes: 10 * MiB,
});

describe('TrimPolicy', () => {
  it('sets its free-memory floor at 10% of RSS, never below 8 MiB, unless minFreeBytes is given', () => {
    expect(policy().floorBytes({ rssBytes: 1000 * MiB })).toBe(100 * MiB);
    expect(policy().floorBytes({ rssBytes: 40 * MiB })).toBe(8 * MiB);
    expect(policy({ minFreeBytes: 0 }).floorBytes({ rssBytes: 1000 * MiB })).toBe(0);
    // 90 MiB free in a 1000 MiB process is under the floor; 110 MiB is over it.
    expect(policy().shouldTrim(sample(1000 * MiB, 200 * MiB, 90 * MiB), 0)).toBe(false);
    expect(policy().shouldTrim(sample(1000 * MiB, 200 * MiB, 110 * MiB), 0)).toBe(true);
  });

  it('asks for a sample once the process has been quiet for quietMs after a burst, once per burst', () => {
    const p = policy({ quietMs: 2000 });
    // Quiet without a burst first: nothing to do.
    expect(p.noteActivity(0.01, 0, 1000)).toBe(false);
    expect(p.noteActivity(0.01, 1000, 2000)).toBe(false);
    expect(p.noteActivity(0.01, 2000, 3000)).toBe(false);
    // A burst (at least 4 x quietCpu), then quiet: the second quiet second completes 2000 ms.
    expect(p.noteActivity(0.9, 3000, 4000)).toBe(false);
    expect(p.noteActivity(0.01, 4000, 5000)).toBe(false);
    expect(p.noteActivity(0.01, 5000, 6000)).toBe(true);
    expect(p.noteActivity(0.01, 6000, 7000)).toBe(false);
    // Light work in between (between quietCpu and a burst) restarts the quiet time, no burst.
    expect(p.noteActivity(0.5, 7000, 8000)).toBe(false);
    expect(p.noteActivity(0.1, 8000, 9000)).toBe(false);
    expect(p.noteActivity(0.01, 9000, 10000)).toBe(false);
    expect(p.noteActivity(0.01, 10000, 11000)).toBe(true);
    expect(policy({ whenQuiet: false }).noteActivity(0.9, 0, 1000)).toBe(false);
  });

  it('lets a quiet trim skip minIntervalMs, but not the other gates', () => {
    const p = policy({ minIntervalMs: 60_000 });
    const s = sample(500 * MiB, 100 * MiB, 200 * MiB);
    expect(p.shouldTrim(s, 0)).toBe(true);
    p.trimmed(s, { releasedBytes: 0, rssAfterBytes: 500 * MiB } as never, 0);
    // Ten seconds later, 150 MiB more is unexplained: the interval holds, a quiet sample does not.
    const grown = sample(650 * MiB, 100 * MiB, 350 * MiB);
    expect(p.shouldTrim(grown, 10_000, 'interval')).toBe(false);
    expect(p.shouldTrim(grown, 10_000, 'gc')).toBe(false);
    expect(p.shouldTrim(grown, 10_000, 'quiet')).toBe(true);
    // Without growth since the trim, not even when quiet.
    expect(p.shouldTrim(s, 10_000, 'quiet')).toBe(false);
  });

  it('lets the next quiet trim take the thread-arena tops a trim left for later, without growth', () => {
    const p = policy();
    const s = sample(500 * MiB, 100 * MiB, 200 * MiB);
    p.trimmed(s, { releasedBytes: 50 * MiB, rssAfterBytes: 450 * MiB, threadArenasPending: 3 } as never, 0);
    expect(p.pendingArenas).toBe(3);
    // RSS is where the trim left it, nothing grew: a quiet sample trims (for those tops), the
    // others wait for growth as before.
    const after = sample(450 * MiB, 100 * MiB, 200 * MiB);
    expect(p.shouldTrim(after, 120_000, 'quiet')).toBe(true);
    expect(p.shouldTrim(after, 120_000, 'interval')).toBe(false);
    // Once a trim left none, quiet samples wait for growth again.
    p.trimmed(
      after,
      { releasedBytes: 8 * MiB, rssAfterBytes: 442 * MiB, threadArenasPending: 0 } as never,
      1000,
    );
    expect(p.shouldTrim(sample(442 * MiB, 100 * MiB, 200 * MiB), 130_000, 'quiet')).toBe(false);
  });

  it('shrinks the floor, the growth and the interval with the headroom left under a cgroup limit', () => {
    const GiB = 1024 * MiB;
    expect(limitScale(null)).toBe(1);
    expect(limitScale({ bytes: GiB, headroomBytes: GiB / 2 })).toBe(1);
    expect(limitScale({ bytes: 1000, headroomBytes: 100 })).toBeCloseTo(0.4);
    expect(limitScale({ bytes: 1000, headroomBytes: -5 })).toBe(0);
    const tight = { bytes: GiB, headroomBytes: GiB / 10 }; // a tenth left: 40% of each gate
    const p = policy({ minFreeBytes: 100 * MiB });
    expect(p.floorBytes({ rssBytes: 900 * MiB, limit: tight })).toBe(40 * MiB);
    expect(p.floorBytes({ rssBytes: 900 * MiB, limit: { bytes: GiB, headroomBytes: 0 } })).toBe(MiB);
    // 60 MiB free: under the floor with room to spare, over it near the limit.
    const s = { ...sample(900 * MiB, 150 * MiB, 60 * MiB), limit: null };
    expect(p.shouldTrim(s, 0)).toBe(false);
    expect(p.shouldTrim({ ...s, limit: tight }, 0)).toBe(true);
    // After a trim the interval (60 s) shrinks too: 24 s with a tenth left.
    p.trimmed(s, { releasedBytes: 50 * MiB, rssAfterBytes: 850 * MiB } as never, 0);
    const grown = { ...sample(950 * MiB, 150 * MiB, 110 * MiB), limit: tight };
    expect(p.shouldTrim(grown, 20_000)).toBe(false);
    expect(p.shouldTrim(grown, 25_000)).toBe(true);
    expect(p.shouldTrim({ ...grown, limit: null }, 25_000)).toBe(false);
  });

  it('rejects bad options', () => {
    expect(() => readTrimOptions({ quietCpu: -1 })).toThrow(RangeError);
    expect(() => readTrimOptions({ quietMs: 'soon' })).toThrow(TypeError);
    expect(() => readTrimOptions({ whenQuiet: 1 })).toThrow(TypeError);
    expect(() => readTrimOptions({ arenaMax: 0 })).toThrow(RangeError);
    expect(() => readTrimOptions({ arenaMax: 2.5 })).toThrow(/integer/);
    expect(readTrimOptions({ arenaMax: false })!.arenaMax).toBe(null);
    expect(readTrimOptions(true)!.arenaMax).toBe(2 * availableParallelism());
    expect(readTrimOptions({ cgroup: false })!.cgroup).toBe(null);
    expect(() => readTrimOptions({ cgroup: { root: 1 } })).toThrow(/options.autoTrim.cgroup.root/);
    expect(() => readTrimOptions({ cgroup: { mount: '/' } })).toThrow(/Unknown option "mount"/);
  });
});

describe('auto-trim when the process goes quiet (child process)', () => {
  interface Out {
    trims: { afterQuietMs: number; releasedBytes: number }[];
    trimsBy: MonitorStats['trimsBy'];
  }
  it('trims within seconds of a burst ending, though the interval is ten minutes', () => {
    const r = runFixture<Out>('policy.cjs', { args: ['quiet'] });
    expect(r.trims.length, JSON.stringify(r)).toBe(1);
    expect(r.trimsBy).toEqual({ interval: 0, quiet: 1, gc: 0 });
    // About 64 MiB of holes were left. The quiet trigger did it (trimsBy), not the ten-minute
    // interval; how soon after the burst (about 3 s: quietMs is 2 s and the CPU is read every
    // second) is a matter of timers, which a loaded machine delays, so it is not checked here.
    expect(r.trims[0].releasedBytes).toBeGreaterThan(32 * MiB);
  });

  it('does not trim then with whenQuiet: false', () => {
    const r = runFixture<Out>('policy.cjs', { args: ['quiet', 'off'] });
    expect(r.trims).toEqual([]);
  });

  it('keeps the early sample to the overhead budget: none before the budget allows', () => {
    const r = runFixture<Out & { samples: number }>('policy.cjs', { args: ['quiet', 'budget'] });
    expect(r.samples).toBe(1);
    expect(r.trims).toEqual([]);
  });
});

describe.skipIf(fragstat.allocator().name !== 'glibc')(
  'the arena cap of auto-trim (glibc, child process)',
  () => {
    interface Out {
      before: number;
      after: number;
      arenaCap: number | null;
      setting: Tunable;
    }
    it('without a monitor, twelve allocating threads add arenas', () => {
      const r = runFixture<Out>('policy.cjs', { args: ['arenas', 'none'] });
      expect(r.after - r.before).toBeGreaterThanOrEqual(6);
      expect(r.setting.source).toBe('default');
    });

    it('under a monitor with arenaMax: 2, they share the arenas that exist', () => {
      const r = runFixture<Out>('policy.cjs', { args: ['arenas', 'cap2'] });
      expect(r.arenaCap).toBe(2);
      expect(r.after).toBeLessThanOrEqual(Math.max(r.before, 2));
      expect(r.setting).toMatchObject({ value: 2, source: 'mallopt' });
    });

    it('sets 2 x CPUs by default, and leaves a cap the environment chose', () => {
      const r = runFixture<Out>('policy.cjs', { args: ['arenas', 'default'] });
      expect(r.arenaCap).toBe(2 * availableParallelism());
      const env = runFixture<Out>('policy.cjs', {
        args: ['arenas', 'default'],
        env: { MALLOC_ARENA_MAX: '3' },
      });
      expect(env.arenaCap).toBe(null);
      expect(env.setting).toMatchObject({ value: 3, source: 'env' });
    });
  },
);

describe('auto-trim under a cgroup limit (child process, a fake cgroup v2 tree)', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'fragstat-policy-cgroup-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const GiB = 1024 * MiB;
  const tree = (name: string, currentBytes: number) => {
    const dir = path.join(root, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'cgroup.controllers'), 'memory\n');
    writeFileSync(path.join(dir, 'memory.max'), `${GiB}\n`);
    writeFileSync(path.join(dir, 'memory.high'), 'max\n');
    writeFileSync(path.join(dir, 'memory.current'), `${currentBytes}\n`);
    return dir;
  };
  interface Out {
    trims: { releasedBytes: number }[];
  }
  // About 48 MiB of holes against a floor of 256 MiB: only a tight limit lowers the floor enough.
  // A trim expected: up to 30 s for it. None expected: 3 s (thirty samples) show it stays away.
  const run = (dir: string, waitMs: number) =>
    runFixture<Out>('policy.cjs', {
      args: ['cgroup'],
      env: { FRAGSTAT_TEST_CGROUP_ROOT: dir, WAIT_MS: String(waitMs) },
    });

  it('trims what it would leave alone with room to spare, once the limit is near', () => {
    const near = run(tree('near', GiB - 20 * MiB), 30_000); // 2% left: the floor falls to 20 MiB
    expect(near.trims.length, JSON.stringify(near)).toBeGreaterThanOrEqual(1);
    expect(near.trims[0].releasedBytes).toBeGreaterThan(24 * MiB);
    expect(run(tree('roomy', GiB / 2), 3000).trims).toEqual([]);
  });
});
