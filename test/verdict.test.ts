// The verdict from processes that really do each thing to their memory, and its refusal to judge
// on short histories, small growth or noise.
import { describe, expect, it } from 'vitest';
import { verdict, type Verdict, type VerdictPoint } from '../src';
import { MiB, runFixture } from './helpers';

function run(name: string): Verdict {
  const r = runFixture<{ verdict: Verdict; samples: number }>(`verdict.cjs`, {
    env: { SCENARIO: name },
  });
  expect(r.samples).toBe(40);
  return r.verdict;
}

describe('verdict from a real process', () => {
  it('a growing JS array is js-heap-growth', () => {
    const v = run('js');
    expect(v.kind, JSON.stringify(v)).toBe('js-heap-growth');
    expect(v.evidence!.v8Share!).toBeGreaterThan(0.5);
    expect(v.evidence!.rssR2).toBeGreaterThan(0.5);
    expect(v.advice).toMatch(/heap snapshot/);
  });

  it('Buffers kept in a Map are native-growth', () => {
    const v = run('native');
    expect(v.kind, JSON.stringify(v)).toBe('native-growth');
    // 2 MiB of Buffers per sample, 39 steps between the first sample and the last.
    expect(v.evidence!.liveGrowthBytes!).toBeGreaterThan(60 * MiB);
    expect(v.evidence!.liveGrowthBytes!).toBeLessThan(100 * MiB);
    expect(v.evidence!.liveShare!).toBeGreaterThan(0.5);
  });

  it('the stair-step of freed bodies is fragmentation', () => {
    const v = run('fragmentation');
    expect(v.kind, JSON.stringify(v)).toBe('fragmentation');
    // 1 MiB more RSS per sample while live bytes grow by 32 KiB.
    expect(v.evidence!.rssGrowthBytes).toBeGreaterThan(25 * MiB);
    expect(v.evidence!.liveShare!).toBeLessThan(0.2);
    expect(v.evidence!.unexplainedShare!).toBeGreaterThan(0.5);
    expect(v.advice).toMatch(/trim/);
    expect(v.advice).toMatch(/MALLOC_ARENA_MAX=2/);
  });

  it('an idle process is stable', () => {
    const v = run('stable');
    expect(v.kind, JSON.stringify(v)).toBe('stable');
    expect(Math.abs(v.evidence!.rssGrowthBytes)).toBeLessThan(16 * MiB);
  });
});

// Synthetic series: the function is plain arithmetic over readings.
function points(n: number, f: (i: number) => Partial<VerdictPoint>): VerdictPoint[] {
  return Array.from({ length: n }, (_, i) => ({
    timestamp: 1_700_000_000_000 + i * 10_000,
    rssBytes: 200 * MiB,
    allocatedBytes: 50 * MiB,
    v8HeapBytes: 40 * MiB,
    ...f(i),
  }));
}

describe('verdict() over readings', () => {
  it('needs minSamples readings', () => {
    const v = verdict(points(29, (i) => ({ rssBytes: (200 + 10 * i) * MiB })));
    expect(v.kind).toBe('insufficient-evidence');
    expect(v.title).toMatch(/29 of 30/);
    expect(
      verdict(
        points(2, (i) => ({ rssBytes: (200 + 100 * i) * MiB })),
        { minSamples: 2 },
      ).kind,
    ).toBe('fragmentation');
  });

  it('calls growth below 10% of RSS or 16 MiB stable', () => {
    // +15 MiB on 200 MiB, perfectly steady: below both floors.
    expect(verdict(points(40, (i) => ({ rssBytes: 200 * MiB + (i * 15 * MiB) / 39 }))).kind).toBe('stable');
    // +40 MiB on a 10 MiB process: 400% but the byte floor is 16 MiB; +12 MiB stays stable.
    expect(
      verdict(
        points(40, (i) => ({ rssBytes: 10 * MiB + (i * 12 * MiB) / 39, v8HeapBytes: 1, allocatedBytes: 1 })),
      ).kind,
    ).toBe('stable');
  });

  it('does not judge growth that does not fit a line', () => {
    // RSS swings by 200 MiB between readings around a trend of +58 MiB: growth, but not steady.
    const noisy = points(40, (i) => ({ rssBytes: (200 + (i % 2 ? 200 : 0) + i * 1.5) * MiB }));
    const v = verdict(noisy);
    expect(v.evidence!.rssGrowthBytes).toBeGreaterThan(50 * MiB);
    expect(v.evidence!.rssR2).toBeLessThan(0.5);
    expect(v.kind).toBe('insufficient-evidence');
  });

  it('attributes growth to the component that explains most of it', () => {
    const grow = (i: number) => (i * 60 * MiB) / 39;
    expect(
      verdict(points(40, (i) => ({ rssBytes: 200 * MiB + grow(i), v8HeapBytes: 40 * MiB + grow(i) }))).kind,
    ).toBe('js-heap-growth');
    expect(
      verdict(
        points(40, (i) => ({ rssBytes: 200 * MiB + grow(i), allocatedBytes: 50 * MiB + grow(i) * 0.8 })),
      ).kind,
    ).toBe('native-growth');
    const frag = verdict(
      points(40, (i) => ({ rssBytes: 200 * MiB + grow(i), allocatedBytes: 50 * MiB + grow(i) * 0.1 })),
    );
    expect(frag.kind).toBe('fragmentation');
    expect(frag.evidence!.rssBytesPerHour).toBeCloseTo((60 * MiB) / ((39 * 10_000) / 3_600_000), -3);
    expect(frag.evidence!.rssR2).toBeCloseTo(1, 6);
  });

  it('reads Breakdowns as well as samples', () => {
    const v = verdict(
      points(40, (i) => ({
        allocatedBytes: undefined,
        v8HeapBytes: undefined,
        rssBytes: 200 * MiB + i * MiB,
        parts: { v8Heap: 40 * MiB, mallocLive: 50 * MiB + i * MiB, mallocFreeResident: 0 },
      })),
    );
    expect(v.kind).toBe('native-growth');
  });

  it('says when a figure is missing', () => {
    const v = verdict(points(40, (i) => ({ rssBytes: 200 * MiB + i * 2 * MiB, allocatedBytes: null })));
    expect(v.kind).toBe('insufficient-evidence');
    expect(v.title).toMatch(/missing/);
  });

  it('validates its arguments', () => {
    expect(() => verdict('x' as never)).toThrow(TypeError);
    expect(() => verdict([{ rssBytes: 1 } as never])).toThrow(/timestamp/);
    expect(() => verdict([], { minSamples: 1 })).toThrow(RangeError);
    expect(() => verdict([], { minR2: 'a' as never })).toThrow(TypeError);
    expect(() => verdict([], { bogus: 1 } as never)).toThrow(/Unknown option "bogus"/);
  });
});
