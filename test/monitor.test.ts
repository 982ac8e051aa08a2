// monitor(): samples off the JS thread on an unref'd timer, within a time budget, with an
// optional trim policy that a service can pause.
import { describe, expect, it } from 'vitest';
import * as fragstat from '..';
import type { TrimResult, MonitorStats, Budget } from '..';
import { MiB, runFixture, runFixtureAsync, runNode } from './helpers';

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

  it('gives every iterator every sample; a loop that breaks stops receiving', async () => {
    const m = fragstat.monitor({ intervalMs: 15 });
    const a: number[] = [];
    const b: number[] = [];
    const loopA = (async () => {
      for await (const s of m) {
        a.push(s.timestamp);
        if (a.length === 6) m.stop();
      }
    })();
    const loopB = (async () => {
      for await (const s of m) {
        b.push(s.timestamp);
        if (b.length === 2) break;
      }
    })();
    await Promise.all([loopA, loopB]);
    expect(a).toHaveLength(6);
    expect(b).toEqual(a.slice(0, 2));
    // After stop(), a new loop ends at once.
    for await (const _ of m) throw new Error('a stopped monitor yielded a sample');
  });

  it('a throwing sample listener is rethrown, and sampling, iteration and trims go on', () => {
    const r = runNode(
      [
        '-e',
        `const f = require(process.cwd());
         const errors = [];
         process.on('uncaughtException', (e) => errors.push(e.message));
         const keep = setInterval(() => {}, 1000);
         const m = f.monitor({ intervalMs: 20, autoTrim: { minFreeBytes: 0, minFragmentation: 0, minGrowthBytes: 0, minIntervalMs: 0 } });
         m.on('sample', () => { throw new Error('bug in my listener'); });
         (async () => {
           let n = 0;
           for await (const s of m) if (++n === 4) break;
           m.stop();
           clearInterval(keep);
           await new Promise((r) => setImmediate(r)); // the last rethrow comes on its own tick
           process.stdout.write(JSON.stringify({ n, errors: errors.length, first: errors[0], trims: m.stats().trims, lastError: m.lastError }));
         })();`,
      ],
      { timeoutMs: 20_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.n).toBe(4);
    expect(out.errors).toBeGreaterThanOrEqual(4);
    expect(out.first).toBe('bug in my listener');
    expect(out.trims).toBeGreaterThanOrEqual(1);
    expect(out.lastError).toBeNull();
  });

  it('never asks setTimeout for more than it can wait (2^31-1 ms)', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    const m = fragstat.monitor({ intervalMs: 1000, maxOverhead: 1e-12 });
    await new Promise((r) => m.once('sample', r));
    await new Promise((r) => setTimeout(r, 100));
    m.stop();
    process.off('warning', onWarning);
    expect(m.budget().effectiveIntervalMs).toBe(2 ** 31 - 1);
    expect(m.history()).toHaveLength(1);
    expect(warnings).not.toContain('TimeoutOverflowWarning');
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
    expect(b.effectiveIntervalMs).toBe(
      Math.min(2 ** 31 - 1, Math.max(10, Math.ceil(b.lastSampleMs! / 1e-9))),
    );
    expect(b.intervalReason).toBe('overhead');
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

describe('auto-trim after V8 shrinks (child process)', () => {
  // Its 2e6 objects and their GCs took 42 s on a loaded 2-core machine: a child that does not
  // block this process, with room to finish.
  it('keeps trimming once V8 gives its heap back: the growth gate leaves V8 out', async () => {
    const r = await runFixtureAsync<{
      trims: { phase: number; releasedBytes: number }[];
      v8Before: number;
      v8After: number;
      manualReleasedBytes: number;
    }>('autotrim-v8.cjs', { timeoutMs: 150_000 });
    // V8's heap shrank by over 200 MiB between the phases, and 96 MiB more of Buffers were freed.
    expect(r.v8Before - r.v8After).toBeGreaterThan(200 * MiB);
    const phase2 = r.trims.filter((t) => t.phase === 2);
    expect(phase2.length).toBeGreaterThanOrEqual(1);
    expect(phase2.reduce((a, t) => a + t.releasedBytes, 0)).toBeGreaterThan(64 * MiB);
    // Auto-trim left little for a manual trim (a gate that counted V8 left about 100 MiB).
    expect(r.manualReleasedBytes).toBeLessThan(16 * MiB);
  }, 180_000);
});

describe('auto-trim waits while the JS thread is busy (child process)', () => {
  it('holds trims during 3 s of JS work with 128 MiB freed in it, and trims once the work ends', async () => {
    const r = await runFixtureAsync<{
      trims: { phase: string; releasedBytes: number }[];
      busySamples: number;
      heldBusy: number;
    }>('busy.cjs', { timeoutMs: 120_000 });
    expect(
      r.trims.filter((t) => t.phase === 'busy'),
      JSON.stringify(r),
    ).toEqual([]);
    // The samples went on during the work, and the policy said why it did not trim.
    expect(r.busySamples).toBeGreaterThanOrEqual(3);
    expect(r.heldBusy).toBeGreaterThanOrEqual(1);
    const idle = r.trims.filter((t) => t.phase === 'idle');
    expect(idle.length, JSON.stringify(r)).toBeGreaterThanOrEqual(1);
    expect(idle[0].releasedBytes).toBeGreaterThan(64 * MiB);
  }, 150_000);
});

describe('auto-trim backs off when a trim is undone (child process)', () => {
  it('counts a trim whose pages the process touched again by the next sample, and doubles the interval', () => {
    const r = runNode([
      '--expose-gc',
      '-e',
      `const f = require(process.cwd());
       const { settle } = require(process.cwd() + '/test/fixtures/settle.cjs');
       const keep = setInterval(() => {}, 1000);
       (async () => {
         let bufs = Array.from({ length: 1024 }, () => Buffer.alloc(64 * 1024, 1));
         bufs = bufs.filter((_, i) => i % 2); // 32 MiB of 64 KiB holes
         // Every hole has reached malloc before the monitor starts: a sample taken while V8 still
         // frees them (on a background thread, late on a loaded machine) would trim only some.
         await settle();
         const m = f.monitor({ intervalMs: 150, autoTrim: { minFreeBytes: 16 * 1048576, minIntervalMs: 200 } });
         // Right after the trim, the service needs the memory again: the holes filled anew, in the
         // trim's own listener so that it happens before the next sample judges the trim.
         let again = null;
         const trimmed = new Promise((r) => m.once('trim', (t) => {
           again = Array.from({ length: 512 }, () => Buffer.alloc(64 * 1024, 2));
           r(t);
         }));
         const t = await trimmed;
         await new Promise((r) => m.once('sample', r));
         await new Promise((r) => m.once('sample', r));
         const st = m.stats();
         m.stop(); clearInterval(keep);
         process.stdout.write(JSON.stringify({ released: t.releasedBytes, undone: st.trimsUndone, interval: st.trimIntervalMs, kept: again.length + bufs.length }));
       })();`,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.released).toBeGreaterThan(24 * MiB);
    expect(out.undone).toBe(1);
    expect(out.interval).toBe(400);
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
