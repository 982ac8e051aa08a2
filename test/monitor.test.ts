// monitor(): samples off the JS thread on an unref'd timer, within a time budget, with an
// optional trim policy that a service can pause.
import { describe, expect, it } from 'vitest';
import * as fragstat from '..';
import type { TrimResult, MonitorStats, Budget } from '..';
import { MiB, runFixture, runNode } from './helpers';

describe('sampling', () => {
  it('emits samples as events and through for await, keeps a bounded history, and stops', async () => {
    const m = fragstat.monitor({ intervalMs: 20, historySize: 3 });
    const events: number[] = [];
    m.on('sample', (s) => events.push(s.timestamp));
    const seen = [];
    for await (const s of m) {
      expect(s.allocator).toBe('glibc');
      expect(s.intervalMs).toBeGreaterThanOrEqual(20);
      seen.push(s);
      if (seen.length === 5) m.stop();
    }
    expect(seen).toHaveLength(5);
    expect(events.length).toBeGreaterThanOrEqual(5);
    const h = m.history();
    expect(h).toHaveLength(3);
    expect(h[2].timestamp).toBeGreaterThanOrEqual(h[0].timestamp);
    expect(m.latest()).toEqual(h[2]);
    expect(m.isRunning).toBe(false);
    expect(m.stats().peakRssBytes).toBeGreaterThanOrEqual(Math.max(...h.map((s) => s.rssBytes!)));
  });

  it('does not start until asked when start is false', async () => {
    const m = fragstat.monitor({ intervalMs: 10, start: false });
    await new Promise((r) => setTimeout(r, 60));
    expect(m.history()).toHaveLength(0);
    m.start();
    await new Promise((r) => m.once('sample', r));
    m.stop();
    expect(m.history().length).toBeGreaterThanOrEqual(1);
  });

  it('never keeps the process alive', () => {
    const r = runNode(['-e', `require(process.cwd()).monitor({ intervalMs: 50 }); console.log('started')`], {
      timeoutMs: 20_000,
    });
    expect(r.signal).toBeNull();
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('started');
  });

  it('stretches its interval so sampling stays within maxOverhead', async () => {
    // A budget so small that even a microsecond sample exceeds it: interval = cost / maxOverhead.
    const m = fragstat.monitor({ intervalMs: 10, maxOverhead: 1e-9 });
    await new Promise((r) => m.once('sample', r));
    m.stop();
    const b = m.budget();
    expect(b.lastSampleMs!).toBeGreaterThan(0);
    expect(b.effectiveIntervalMs).toBe(Math.max(10, Math.ceil(b.lastSampleMs! / 1e-9)));
    expect(b.effectiveIntervalMs).toBeGreaterThan(10);
  });
});

describe('auto-trim policy (fragmented heap, child process)', () => {
  interface Out {
    firstTrim: TrimResult | null;
    trimsAfterQuiet: number;
    trimsWhilePaused: number;
    pausedStats: MonitorStats;
    trimAfterResume: TrimResult | null;
    stats: MonitorStats;
    budget: Budget;
    history: number;
    backoff: number[];
  }
  const r = runFixture<Out>('monitor.cjs');

  it('trims when free memory and fragmentation pass their thresholds, and reports what it released', () => {
    expect(r.firstTrim).not.toBeNull();
    // 32 MiB was freed in 64 KiB holes: most of it comes back.
    expect(r.firstTrim!.releasedBytes!).toBeGreaterThan(0.7 * 32 * MiB);
    expect(r.firstTrim!.releasedBytes).toBe(r.firstTrim!.rssBeforeBytes! - r.firstTrim!.rssAfterBytes!);
  });

  it('does not trim again while nothing new has been freed', () => {
    expect(r.trimsAfterQuiet).toBe(1);
  });

  it('holds trims while paused and trims after resume', () => {
    expect(r.trimsWhilePaused).toBe(1);
    expect(r.pausedStats.trimPaused).toBe(true);
    expect(r.trimAfterResume!.releasedBytes!).toBeGreaterThan(0.7 * 32 * MiB);
    expect(r.stats.trims).toBe(2);
    expect(r.stats.trimReleasedBytes).toBe(r.firstTrim!.releasedBytes! + r.trimAfterResume!.releasedBytes!);
    expect(r.stats.trimPaused).toBe(false);
  });

  it('backs off when trims keep releasing nothing (doubling up to maxBackoff)', () => {
    expect(r.backoff).toEqual([20, 40, 80, 80, 80]);
  });

  it('reports the budget in effect', () => {
    expect(r.budget.maxOverhead).toBe(0.002);
    expect(r.budget.effectiveIntervalMs).toBeGreaterThanOrEqual(50);
    expect(r.budget.overhead).toBeGreaterThan(0);
    expect(r.history).toBe(r.stats.samples);
  });
});

describe('options', () => {
  const bad: [unknown, ErrorConstructor, RegExp][] = [
    [{ intervalMs: 0 }, RangeError, /from 10 to .* for options.intervalMs but received 0/],
    [{ intervalMs: '1s' }, TypeError, /Expected a number for options.intervalMs but received a string/],
    [{ historySize: 2.5 }, RangeError, /an integer from 2 to 100000 for options.historySize/],
    [{ maxOverhead: 0 }, RangeError, /options.maxOverhead/],
    [{ maxOverhead: 0.9 }, RangeError, /options.maxOverhead/],
    [{ autoTrim: 'yes' }, TypeError, /a boolean or an object for options.autoTrim/],
    [{ autoTrim: { minFragmentation: 2 } }, RangeError, /options.autoTrim.minFragmentation/],
    [{ autoTrim: { every: 1 } }, TypeError, /Unknown option "every" for options.autoTrim/],
    [{ interval: 1000 }, TypeError, /Unknown option "interval" for monitor\(options\)/],
    [null, TypeError, /Expected an object or undefined for monitor\(options\)/],
  ];
  for (const [options, type, message] of bad) {
    it(`rejects ${JSON.stringify(options)}`, () => {
      expect(() => fragstat.monitor(options as never)).toThrow(type);
      expect(() => fragstat.monitor(options as never)).toThrow(message);
    });
  }
});
