// tunables() reports the settings a child process was started with, and where each came from;
// tune() changes them at run time with effects RSS shows without any trim.
import * as os from 'node:os';
import { describe, expect, it } from 'vitest';
import { tune, type TuneResult, type Tunables } from '../src';
import { evalJson, havePreload, MiB, root, runFixture } from './helpers';

const read = 'process.stdout.write(JSON.stringify(fragstat.tunables()));';

interface TuneRun {
  tuned: TuneResult | null;
  tunables: Tunables;
  trims: number;
  full: { rssBytes: number; allocatedBytes: number };
  freed: { rssBytes: number; allocatedBytes: number };
}

const released = (r: TuneRun): number => r.full.rssBytes - r.freed.rssBytes;

describe('glibc', () => {
  it('reports defaults, and says which glibc moves on its own', () => {
    const t = evalJson<Tunables>(read);
    expect(t.allocator).toBe('glibc');
    const s = t.settings;
    expect(s['glibc.malloc.arena_max']).toMatchObject({ source: 'default' });
    expect(s['glibc.malloc.arena_max'].value).toBe(8 * os.cpus().length);
    expect(s['glibc.malloc.top_pad']).toMatchObject({ value: 128 * 1024, source: 'default' });
    // The dynamic thresholds cannot be read once glibc may have moved them.
    expect(s['glibc.malloc.trim_threshold']).toMatchObject({
      value: null,
      source: 'default',
      defaultValue: 131072,
    });
    expect(s['glibc.malloc.mmap_threshold'].value).toBeNull();
    expect(s['glibc.malloc.trim_threshold'].note).toMatch(/cannot be read/);
  });

  it('reads MALLOC_* and GLIBC_TUNABLES, GLIBC_TUNABLES winning as in glibc', () => {
    const t = evalJson<Tunables>(read, {
      env: {
        MALLOC_ARENA_MAX: '2',
        MALLOC_TRIM_THRESHOLD_: '262144',
        GLIBC_TUNABLES: 'glibc.malloc.top_pad=65536:glibc.malloc.arena_max=3:glibc.malloc.tcache_count=0',
      },
    });
    expect(t.environment).toMatchObject({ MALLOC_ARENA_MAX: '2', MALLOC_TRIM_THRESHOLD_: '262144' });
    expect(t.glibcTunables).toEqual({
      'glibc.malloc.top_pad': '65536',
      'glibc.malloc.arena_max': '3',
      'glibc.malloc.tcache_count': '0',
    });
    const s = t.settings;
    expect(s['glibc.malloc.arena_max']).toMatchObject({ value: 3, source: 'env', from: 'GLIBC_TUNABLES' });
    expect(s['glibc.malloc.trim_threshold']).toMatchObject({
      value: 262144,
      source: 'env',
      from: 'MALLOC_TRIM_THRESHOLD_',
    });
    expect(s['glibc.malloc.top_pad']).toMatchObject({ value: 65536, source: 'env', from: 'GLIBC_TUNABLES' });
    expect(s['glibc.malloc.tcache_count']).toMatchObject({ value: 0, source: 'env' });
    // A threshold set at start turns glibc's dynamic thresholds off: the mmap threshold is known.
    expect(s['glibc.malloc.mmap_threshold']).toMatchObject({ value: 131072, source: 'default' });
  });

  it("tune() reports fragstat's own mallopt calls before and after", () => {
    const r = evalJson<TuneResult & { again: Tunables }>(
      `const r = fragstat.tune({ arenaMax: 2, topPadBytes: 0 });
       process.stdout.write(JSON.stringify({ ...r, again: fragstat.tunables() }));`,
      { env: { MALLOC_TOP_PAD_: '4096' } },
    );
    expect(
      r.changes.map((c) => [c.setting, c.before?.source, c.before?.value, c.after?.source, c.after?.value]),
    ).toEqual([
      ['glibc.malloc.arena_max', 'default', r.changes[0].before!.defaultValue, 'mallopt', 2],
      ['glibc.malloc.top_pad', 'env', 4096, 'mallopt', 0],
    ]);
    expect(r.again.settings['glibc.malloc.arena_max']).toMatchObject({ from: 'mallopt(M_ARENA_MAX)' });
    expect(r.again.settings['glibc.malloc.arena_max'].note).toMatch(/new ones/);
  });

  it('a mallopt made in a worker thread shows in the main thread: the setting is process-wide', () => {
    const r = evalJson<{ inWorker: number; main: Tunables['settings'][string] }>(`
      const { Worker } = require('node:worker_threads');
      const w = new Worker(\`const { parentPort } = require('node:worker_threads');
        const f = require(\${JSON.stringify(${JSON.stringify(root)})});
        parentPort.postMessage(f.tune({ topPadBytes: 65536 }).changes[0].after.value);\`, { eval: true });
      w.on('message', (inWorker) => {
        process.stdout.write(JSON.stringify({ inWorker, main: fragstat.tunables().settings['glibc.malloc.top_pad'] }));
        w.terminate();
      });`);
    expect(r.inWorker).toBe(65536);
    expect(r.main).toMatchObject({ value: 65536, source: 'mallopt' });
  });

  it('a low trim threshold lets free() return the top of the heap without a trim', () => {
    // Blocks below the 32 MiB mmap threshold come from the main heap, one after the other, so
    // freeing them all leaves one large top chunk. free() shrinks it only above the trim threshold.
    const heap = { mmapThresholdBytes: 32 * MiB };
    const env = (t: object) => ({
      env: { TUNE: JSON.stringify({ ...heap, ...t }), BYTES: String(64 * MiB) },
    });
    const high = runFixture<TuneRun>('tune.cjs', env({ trimThresholdBytes: 1024 * MiB }));
    const low = runFixture<TuneRun>('tune.cjs', env({ trimThresholdBytes: 128 * 1024 }));
    for (const r of [high, low]) {
      expect(r.trims).toBe(0);
      expect(r.full.allocatedBytes - r.freed.allocatedBytes).toBeGreaterThan(60 * MiB);
    }
    expect(released(high)).toBeLessThan(16 * MiB);
    expect(released(low)).toBeGreaterThan(48 * MiB);
  });
});

describe('tune() validation', () => {
  it('names the option, what it expected and what it received', () => {
    expect(() => tune({ trimThresholdBytes: '1' as unknown as number })).toThrow(
      /Expected a number for options.trimThresholdBytes but received a string/,
    );
    expect(() => tune({ arenaMax: 0 })).toThrow(RangeError);
    expect(() => tune({ mmapThresholdBytes: 64 * MiB })).toThrow(
      /from 0 to 33554432 for options.mmapThresholdBytes/,
    );
    expect(() => tune({ dirtyDecayMs: 1.5 })).toThrow(RangeError);
    expect(() => tune({ backgroundThread: 1 as unknown as boolean })).toThrow(TypeError);
    expect(() => tune({ arenaMaximum: 2 } as never)).toThrow(/Unknown option "arenaMaximum"/);
    expect(() => tune(null as never)).toThrow(TypeError);
  });

  it('refuses an option the running allocator does not have, before applying any', () => {
    let err: (Error & { code?: string }) | null = null;
    try {
      tune({ backgroundThread: true });
    } catch (e) {
      err = e as Error;
    }
    expect(err?.code).toBe('ERR_FRAGSTAT_TUNE_UNSUPPORTED');
    expect(err?.message).toMatch(/backgroundThread applies under jemalloc, but glibc serves malloc here/);
    const r = evalJson<{ code: string; arenaMax: string }>(
      `let code = null;
       try { fragstat.tune({ arenaMax: 2, releaseRate: 5 }); } catch (e) { code = e.code; }
       process.stdout.write(JSON.stringify({ code, arenaMax: fragstat.tunables().settings['glibc.malloc.arena_max'].source }));`,
    );
    expect(r).toEqual({ code: 'ERR_FRAGSTAT_TUNE_UNSUPPORTED', arenaMax: 'default' });
  });
});

describe('without allocator symbols (a libc like musl)', () => {
  it('still reports the environment, reads no setting, and refuses to tune', () => {
    const r = evalJson<{ t: Tunables; code: string }>(
      `let code = null;
       try { fragstat.tune({ arenaMax: 2 }); } catch (e) { code = e.code; }
       process.stdout.write(JSON.stringify({ t: fragstat.tunables(), code }));`,
      { env: { FRAGSTAT_HIDE_SYMBOLS: '*', MALLOC_ARENA_MAX: '2' } },
    );
    expect(r.t.allocator).toBe('unknown');
    expect(r.t.environment.MALLOC_ARENA_MAX).toBe('2');
    expect(r.t.settings).toEqual({});
    expect(r.code).toBe('ERR_FRAGSTAT_TUNE_UNSUPPORTED');
  });
});

describe.runIf(havePreload('jemalloc'))('jemalloc (LD_PRELOAD)', () => {
  it('reads opt.* and the live controls, and says what MALLOC_CONF set', () => {
    const t = evalJson<Tunables>(read, {
      preload: 'jemalloc',
      env: { MALLOC_CONF: 'background_thread:true,dirty_decay_ms:5000,narenas:3' },
    });
    expect(t.allocator).toBe('jemalloc');
    expect(t.mallocConf).toEqual({ background_thread: 'true', dirty_decay_ms: '5000', narenas: '3' });
    const s = t.settings;
    expect(s['opt.narenas']).toMatchObject({ value: 3, source: 'allocator' });
    expect(s['opt.dirty_decay_ms']).toMatchObject({
      value: 5000,
      note: 'MALLOC_CONF sets dirty_decay_ms:5000',
    });
    expect(s['opt.background_thread'].value).toBe(true);
    expect(s.background_thread.value).toBe(true);
    expect(s['arenas.dirty_decay_ms'].value).toBe(5000);
    expect(s['opt.muzzy_decay_ms'].value).toBe(0);
  });

  it('turns background_thread on at run time and reads it back', () => {
    const r = evalJson<TuneResult & { again: Tunables }>(
      `const r = fragstat.tune({ backgroundThread: true });
       process.stdout.write(JSON.stringify({ ...r, again: fragstat.tunables() }));`,
      { preload: 'jemalloc' },
    );
    expect(r.changes[0]).toMatchObject({
      setting: 'background_thread',
      before: { value: false },
      after: { value: true },
    });
    expect(r.again.settings.background_thread.value).toBe(true);
    expect(r.again.settings['opt.background_thread'].value).toBe(false);
  });

  it('dirty decay 0 returns freed pages at once; -1 keeps them (no trim either way)', () => {
    const run = (ms: number) =>
      runFixture<TuneRun>('tune.cjs', {
        preload: 'jemalloc',
        env: { TUNE: JSON.stringify({ dirtyDecayMs: ms }) },
      });
    const never = run(-1);
    const now = run(0);
    for (const r of [never, now]) {
      expect(r.trims).toBe(0);
      expect(r.full.allocatedBytes - r.freed.allocatedBytes).toBeGreaterThan(60 * MiB);
    }
    expect(now.tuned!.changes.map((c) => [c.setting, c.after!.value])).toEqual([
      ['arenas.dirty_decay_ms', 0],
      ['arena.0.dirty_decay_ms', 0],
    ]);
    expect(released(never)).toBeLessThan(16 * MiB);
    expect(released(now)).toBeGreaterThan(48 * MiB);
  });
});

describe.runIf(havePreload('tcmalloc'))('tcmalloc (LD_PRELOAD)', () => {
  it('reads the release rate TCMALLOC_RELEASE_RATE set, and changes it', () => {
    const r = evalJson<TuneResult & { start: Tunables }>(
      `const start = fragstat.tunables(); const r = fragstat.tune({ releaseRate: 3 });
       process.stdout.write(JSON.stringify({ ...r, start }));`,
      { preload: 'tcmalloc', env: { TCMALLOC_RELEASE_RATE: '7' } },
    );
    expect(r.start.environment.TCMALLOC_RELEASE_RATE).toBe('7');
    expect(r.start.settings['tcmalloc.release_rate']).toMatchObject({ value: 7, source: 'allocator' });
    expect(r.changes[0]).toMatchObject({ before: { value: 7 }, after: { value: 3 } });
    expect(typeof r.start.settings['tcmalloc.max_total_thread_cache_bytes'].value).toBe('number');
  });
});

describe.runIf(havePreload('tcmalloc'))('tcmalloc without its release-rate symbols', () => {
  it('leaves the rate out and rejects setting it with a coded error from the addon', () => {
    const flag =
      '_ZN62FLAG__namespace_do_not_use_directly_use_DECLARE_double_instead27FLAGS_tcmalloc_release_rateE';
    const r = evalJson<{ t: Tunables; code: string; message: string }>(
      `let code = null, message = null;
       try { fragstat.tune({ releaseRate: 3 }); } catch (e) { code = e.code; message = e.message; }
       process.stdout.write(JSON.stringify({ t: fragstat.tunables(), code, message }));`,
      { preload: 'tcmalloc', env: { FRAGSTAT_HIDE_SYMBOLS: flag } },
    );
    expect(r.t.allocator).toBe('tcmalloc');
    expect(r.t.settings['tcmalloc.release_rate']).toBeUndefined();
    expect(r.code).toBe('ERR_FRAGSTAT_TUNE_UNSUPPORTED');
    expect(r.message).toBe('tcmalloc.release_rate cannot be set under tcmalloc in this process');
  });
});

describe.runIf(havePreload('mimalloc'))('mimalloc (LD_PRELOAD)', () => {
  it('reads the options MIMALLOC_* set (enum pinned to 2.0.9), and changes them', () => {
    const r = evalJson<TuneResult & { start: Tunables; version: string }>(
      `const start = fragstat.tunables();
       const r = fragstat.allocator().version === '2.0.9' ? fragstat.tune({ decommitDelayMs: 5, allowDecommit: true }) : {};
       process.stdout.write(JSON.stringify({ ...r, start, version: fragstat.allocator().version }));`,
      { preload: 'mimalloc', env: { MIMALLOC_DECOMMIT_DELAY: '77', MIMALLOC_ALLOW_DECOMMIT: '0' } },
    );
    if (r.version !== '2.0.9') {
      // Other releases number mi_option_t differently: fragstat reads nothing rather than guess.
      expect(r.start.settings).toEqual({});
      return;
    }
    expect(r.start.settings.mi_option_decommit_delay).toMatchObject({ value: 77, source: 'allocator' });
    expect(r.start.settings.mi_option_allow_decommit.value).toBe(false);
    expect(r.start.settings.mi_option_segment_decommit_delay.value).toBe(500);
    expect(r.changes.map((c) => [c.setting, c.before!.value, c.after!.value])).toEqual([
      ['mi_option_decommit_delay', 77, 5],
      ['mi_option_allow_decommit', false, true],
    ]);
  });
});
