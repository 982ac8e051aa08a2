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
    expect(v.evidence!.risingShare).toBeGreaterThan(0.5);
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

// Synthetic series: the function is plain arithmetic over readings. 40 readings 10 s apart
// (6.5 minutes) unless a test says otherwise.
function points(n: number, f: (i: number) => Partial<VerdictPoint>, stepMs = 10_000): VerdictPoint[] {
  return Array.from({ length: n }, (_, i) => ({
    timestamp: 1_700_000_000_000 + i * stepMs,
    rssBytes: 200 * MiB,
    allocatedBytes: 50 * MiB,
    v8HeapBytes: 40 * MiB,
    ...f(i),
  }));
}

describe('verdict() over readings', () => {
  it('needs minSamples readings over minWindowMs, and says how long to wait', () => {
    const few = verdict(points(9, (i) => ({ rssBytes: (200 + 10 * i) * MiB })));
    expect(few.kind).toBe('insufficient-evidence');
    expect(few.title).toMatch(/9 of 10 readings/);
    expect(few.confidence).toBe('low');
    // 9 readings over 80 s: 10 s more gives the tenth, but the window needs 90 s: 10 s either way.
    expect(few.waitMs).toBe(10_000);
    // 20 readings 1 s apart: enough readings, 19 s of the 90 s window.
    const short = verdict(points(20, (i) => ({ rssBytes: (200 + 10 * i) * MiB }), 1000));
    expect(short.kind).toBe('insufficient-evidence');
    expect(short.title).toMatch(/19 s of 90 s sampled/);
    expect(short.waitMs).toBe(71_000);
    expect(short.because.join(' ')).toMatch(/20 readings with an RSS figure over 19 s/);
    expect(
      verdict(
        points(3, (i) => ({ rssBytes: (200 + 100 * i) * MiB })),
        { minSamples: 2, minWindowMs: 0 },
      ).kind,
    ).toBe('fragmentation');
  });

  it('calls growth below 10% of RSS or 16 MiB stable, and says what it could have missed', () => {
    // +15 MiB on 200 MiB, perfectly steady: below both floors.
    const v = verdict(points(40, (i) => ({ rssBytes: 200 * MiB + (i * 15 * MiB) / 39 })));
    expect(v.kind).toBe('stable');
    // 6.5 minutes: medium; a slow leak could hide in it until 15 minutes have passed.
    expect(v.confidence).toBe('medium');
    expect(v.waitMs).toBe(15 * 60_000 - 390_000);
    expect(verdict(points(20, () => ({}))).confidence).toBe('low');
    expect(v.because.join(' ')).toMatch(/A leak slower than about [\d.]+ MiB\/h would not show/);
    // +40 MiB on a 10 MiB process: 400% but the byte floor is 16 MiB; +12 MiB stays stable.
    expect(
      verdict(
        points(40, (i) => ({ rssBytes: 10 * MiB + (i * 12 * MiB) / 39, v8HeapBytes: 1, allocatedBytes: 1 })),
      ).kind,
    ).toBe('stable');
    // Fifteen minutes flat is firm.
    const long = verdict(points(100, () => ({})));
    expect(long).toMatchObject({ kind: 'stable', confidence: 'high', waitMs: null });
  });

  it('judges the troughs: a noisy leak is a leak, a sawtooth is not', () => {
    // RSS swings by 200 MiB between readings around a rising floor of +58 MiB, live bytes with it.
    const noisy = verdict(
      points(40, (i) => ({
        rssBytes: (200 + (i % 2 ? 200 : 0) + i * 1.5) * MiB,
        allocatedBytes: (50 + i * 1.4) * MiB,
      })),
    );
    expect(noisy.kind, JSON.stringify(noisy)).toBe('native-growth');
    // A batch every 30 s takes 150 MiB for 10 s and frees it: the troughs stay at 200 MiB.
    const saw = verdict(
      points(40, (i) => ({
        rssBytes: (i % 3 === 1 ? 350 : 200) * MiB,
        allocatedBytes: (i % 3 === 1 ? 190 : 50) * MiB,
      })),
    );
    expect(saw.kind, JSON.stringify(saw)).toBe('stable');
    expect(saw.evidence!.rssGrowthBytes).toBe(0);
  });

  it('calls a cache that fills and levels off stable, not a leak', () => {
    // Live bytes (and RSS) rise 100 MiB over the first 3 minutes, then stay: 6.5 minutes in all.
    const fill = (i: number) => Math.min(i, 18) * (100 / 18) * MiB;
    const v = verdict(
      points(40, (i) => ({ rssBytes: 200 * MiB + fill(i), allocatedBytes: 50 * MiB + fill(i) })),
    );
    expect(v.kind, JSON.stringify(v)).toBe('stable');
    expect(v.title).toMatch(/levelled off/);
    expect(v.evidence!.rssGrowthBytes).toBeGreaterThan(80 * MiB);
    expect(Math.abs(v.evidence!.recentGrowthBytes)).toBeLessThan(0.25 * v.evidence!.rssGrowthBytes);
    // While it still fills, it is growth, and not called firm when it slows down.
    const early = verdict(
      points(15, (i) => ({ rssBytes: 200 * MiB + fill(i), allocatedBytes: 50 * MiB + fill(i) })),
    );
    expect(early.kind).toBe('native-growth');
  });

  it('calls memory held free at a quiet moment fragmentation, even when RSS is flat', () => {
    // Bursts are over: RSS flat at 345 MiB with 14 MiB live and 232 MiB resident free.
    const v = verdict(
      points(40, () => ({ rssBytes: 345 * MiB, allocatedBytes: 14 * MiB, residentFreeBytes: 232 * MiB })),
    );
    expect(v.kind, JSON.stringify(v)).toBe('fragmentation');
    expect(v.title).toMatch(/232\.0 MiB of RSS \(67%\) is free memory/);
    expect(v.confidence).toBe('high');
    // After a trim the same process holds 5 MiB free: stable.
    expect(
      verdict(
        points(40, () => ({ rssBytes: 118 * MiB, allocatedBytes: 14 * MiB, residentFreeBytes: 5 * MiB })),
      ).kind,
    ).toBe('stable');
    // Bursts that raised RSS by 150 MiB with live bytes flat, no resident free figure: fragmentation.
    const step = (i: number) => (i < 8 ? 0 : i < 16 ? 80 : 150) * MiB;
    const burst = verdict(points(40, (i) => ({ rssBytes: 200 * MiB + step(i) })));
    expect(burst.kind, JSON.stringify(burst)).toBe('fragmentation');
    expect(burst.title).toMatch(/stays there/);
  });

  it('attributes growth to the component that explains most of it', () => {
    const grow = (i: number) => (i * 60 * MiB) / 39;
    const js = verdict(
      points(40, (i) => ({ rssBytes: 200 * MiB + grow(i), v8HeapBytes: 40 * MiB + grow(i) })),
    );
    expect(js.kind).toBe('js-heap-growth');
    expect(js.confidence).toBe('high');
    expect(js.waitMs).toBeNull();
    expect(
      verdict(
        points(40, (i) => ({ rssBytes: 200 * MiB + grow(i), allocatedBytes: 50 * MiB + grow(i) * 0.8 })),
      ).kind,
    ).toBe('native-growth');
    const frag = verdict(
      points(40, (i) => ({ rssBytes: 200 * MiB + grow(i), allocatedBytes: 50 * MiB + grow(i) * 0.1 })),
    );
    expect(frag.kind).toBe('fragmentation');
    // The troughs of the first and last of five slices are 8 readings apart (80 s at 10 s).
    expect(frag.evidence!.rssGrowthBytes).toBeCloseTo(grow(32), -1);
    expect(frag.evidence!.rssBytesPerHour).toBeCloseTo((grow(32) / 312_000) * 3_600_000, -4);
    expect(frag.evidence!.risingShare).toBe(1);
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

  it('leaves out readings that lack a figure instead of giving up', () => {
    // The last reading of a recording without V8's figure, and one without RSS.
    const pts = points(40, (i) => ({
      rssBytes: 200 * MiB + i * 2 * MiB,
      v8HeapBytes: 40 * MiB + i * 2 * MiB,
    }));
    pts.push({ timestamp: pts[39].timestamp + 1000, rssBytes: 280 * MiB, allocatedBytes: 50 * MiB });
    pts.push({ timestamp: pts[39].timestamp + 2000, rssBytes: null });
    const v = verdict(pts);
    expect(v.kind, JSON.stringify(v)).toBe('js-heap-growth');
    expect(v.evidence!.skipped).toBe(1);
    expect(v.because.join(' ')).toMatch(/1 readings without an RSS figure were left out/);
    // Growth with neither component: says so.
    const bare = verdict(
      points(40, (i) => ({ rssBytes: 200 * MiB + i * 2 * MiB, allocatedBytes: null, v8HeapBytes: null })),
    );
    expect(bare.kind).toBe('insufficient-evidence');
    expect(bare.title).toMatch(/neither V8's heap nor live malloc bytes/);
  });

  it('validates its arguments', () => {
    expect(() => verdict('x' as never)).toThrow(TypeError);
    expect(() => verdict([{ rssBytes: 1 } as never])).toThrow(/timestamp/);
    expect(() => verdict([], { minSamples: 1 })).toThrow(RangeError);
    expect(() => verdict([], { minWindowMs: 'a' as never })).toThrow(TypeError);
    expect(() => verdict([], { minR2: 0.5 } as never)).toThrow(/Unknown option "minR2"/);
    expect(() => verdict([], { bogus: 1 } as never)).toThrow(/Unknown option "bogus"/);
  });
});
