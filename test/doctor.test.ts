// doctor(): each rule fires on the numbers it documents, and never on a small heap where a high
// ratio means nothing (the byte floor).
import { describe, expect, it } from 'vitest';
import * as fragstat from '..';
import type { Snapshot, Finding } from '..';
import { havePreload, MiB, runNode } from './helpers';

const GiB = 1024 * MiB;

function snap(over: Partial<Snapshot> & { ratios?: Partial<Snapshot['ratios']> }): Snapshot {
  const base: Snapshot = {
    allocator: 'glibc',
    timestamp: Date.now(),
    rssBytes: 100 * MiB,
    allocatedBytes: 50 * MiB,
    freeBytes: 5 * MiB,
    residentFreeBytes: null,
    heapBytes: 55 * MiB,
    largestFreeBytes: null,
    arenas: null,
    ratios: { fragmentation: 5 / 55, external: null, rss: 2, residentFragmentation: null },
    durationMs: 0.01,
    statsAgeMs: 0,
    mayHaveWrapped: false,
    raw: {},
    detail: null,
  };
  const s = { ...base, ...over, ratios: { ...base.ratios, ...over.ratios } };
  if (over.freeBytes !== undefined || over.heapBytes !== undefined) {
    s.ratios.fragmentation = over.ratios?.fragmentation ?? s.freeBytes! / s.heapBytes!;
  }
  return s;
}

const ids = (f: Finding[]) => f.map((x) => `${x.id}:${x.severity}`);
const noV8 = { v8HeapBytes: 0 };

describe('rules', () => {
  it('finds nothing on a healthy heap', () => {
    expect(fragstat.doctor(snap({}), noV8)).toEqual([]);
  });

  it('trimmable-free-memory reads the resident free figure where there is one', () => {
    // 300 MiB free by glibc's count, of which 10 MiB is still in RAM after a trim: nothing to advise.
    const trimmed = snap({
      freeBytes: 300 * MiB,
      heapBytes: 400 * MiB,
      residentFreeBytes: 10 * MiB,
      ratios: { residentFragmentation: 10 / 110 },
    });
    expect(ids(fragstat.doctor(trimmed, noV8))).toEqual([]);
    const held = snap({
      freeBytes: 300 * MiB,
      heapBytes: 400 * MiB,
      residentFreeBytes: 200 * MiB,
      ratios: { residentFragmentation: 200 / 300 },
    });
    const f = fragstat.doctor(held, noV8).find((x) => x.id === 'trimmable-free-memory')!;
    expect(f.title).toMatch(/200 MiB of free memory in RAM/);
    expect(f.numbers).toMatchObject({ residentFreeBytes: 200 * MiB, freeBytes: 300 * MiB });
  });

  it("trimmable-free-memory says how much sits in thread arenas' tops, which malloc_trim cannot reach", () => {
    const arena = (index: number, topBytes: number) => ({
      index,
      systemBytes: 64 * MiB,
      maxSystemBytes: 64 * MiB,
      freeBytes: topBytes + 4 * MiB,
      freeChunks: 10,
      fastBytes: 0,
      fastChunks: 0,
      topBytes,
      largestFreeBytes: topBytes,
    });
    const s = snap({
      freeBytes: 200 * MiB,
      heapBytes: 400 * MiB,
      detail: {
        arenas: [arena(0, 2 * MiB), arena(1, 30 * MiB), arena(2, 20 * MiB)],
        mmapChunks: 0,
        mmapBytes: 0,
      },
    });
    const f = fragstat.doctor(s, noV8).find((x) => x.id === 'trimmable-free-memory')!;
    expect(f.numbers.threadArenaTopBytes).toBe(50 * MiB);
    expect(f.advice).toMatch(
      /About 50(\.0)? MiB of it is the free top of 2 thread arenas, which malloc_trim itself cannot shrink/,
    );
    // Under glibc 2.36 here, fragstat's own trim releases them.
    if (fragstat.allocator().name === 'glibc') expect(f.advice).toMatch(/trim\(\) releases those pages too/);
  });

  it('trimmable-free-memory: warn at 64 MiB and 25%, critical at 512 MiB and 50%', () => {
    expect(ids(fragstat.doctor(snap({ freeBytes: 100 * MiB, heapBytes: 300 * MiB }), noV8))).toEqual([
      'trimmable-free-memory:warn',
    ]);
    const crit = fragstat.doctor(
      snap({ freeBytes: 600 * MiB, heapBytes: 1000 * MiB, rssBytes: 1100 * MiB }),
      noV8,
    );
    expect(ids(crit)).toContain('trimmable-free-memory:critical');
    const f = crit.find((x) => x.id === 'trimmable-free-memory')!;
    expect(f.numbers).toMatchObject({ freeBytes: 600 * MiB, fragmentation: 0.6 });
    expect(f.advice).toMatch(/trim\(\)/);
    expect(f.advice).not.toMatch(/background_thread/);
    // Under jemalloc the advice names its background thread: idle, it keeps freed pages otherwise.
    const je = fragstat.doctor(
      snap({ allocator: 'jemalloc', freeBytes: 100 * MiB, heapBytes: 300 * MiB }),
      noV8,
    );
    expect(je.find((x) => x.id === 'trimmable-free-memory')!.advice).toMatch(
      /MALLOC_CONF=background_thread:true/,
    );
  });

  it('jemallocCommand keeps an existing MALLOC_CONF, sets the background thread, and quotes for the shell', () => {
    const saved = process.env.MALLOC_CONF;
    try {
      delete process.env.MALLOC_CONF;
      expect(fragstat.jemallocCommand()).toMatch(/MALLOC_CONF=background_thread:true LD_PRELOAD=/);
      process.env.MALLOC_CONF = 'dirty_decay_ms:1000';
      expect(fragstat.jemallocCommand()).toMatch(/MALLOC_CONF=dirty_decay_ms:1000,background_thread:true /);
      // The advice is the background thread: an explicit false is replaced, a trailing comma dropped.
      process.env.MALLOC_CONF = 'background_thread:false,narenas:4,';
      expect(fragstat.jemallocCommand()).toMatch(/MALLOC_CONF=narenas:4,background_thread:true /);
      // Values the shell would split or run are quoted.
      process.env.MALLOC_CONF = "prof_prefix:/tmp/my dir/it's";
      expect(fragstat.jemallocCommand()).toMatch(
        /MALLOC_CONF='prof_prefix:\/tmp\/my dir\/it'\\''s,background_thread:true' LD_PRELOAD=/,
      );
    } finally {
      if (saved === undefined) delete process.env.MALLOC_CONF;
      else process.env.MALLOC_CONF = saved;
    }
  });

  it('byte floor: 90% free of a 40 MiB heap is not reported', () => {
    expect(fragstat.doctor(snap({ freeBytes: 36 * MiB, heapBytes: 40 * MiB }), noV8)).toEqual([]);
  });

  it('glibc-arenas: many arenas and much free memory advise MALLOC_ARENA_MAX and the jemalloc command', () => {
    const f = fragstat.doctor(
      snap({ arenas: 8, freeBytes: 300 * MiB, heapBytes: 600 * MiB, rssBytes: 700 * MiB }),
      noV8,
    );
    const a = f.find((x) => x.id === 'glibc-arenas')!;
    expect(a.severity).toBe('warn');
    expect(a.advice).toMatch(/monitor\(\{ autoTrim: true \}\)/);
    expect(a.advice).toMatch(/MALLOC_ARENA_MAX=2/);
    expect(a.advice).toMatch(/LD_PRELOAD=\S*libjemalloc\.so\.2|apt-get install libjemalloc2/);
    expect(a.advice).toMatch(/MALLOC_CONF=background_thread:true LD_PRELOAD=/);
    expect(a.numbers.arenas).toBe(8);
    // Not with few arenas, and not under another allocator.
    expect(
      ids(fragstat.doctor(snap({ arenas: 2, freeBytes: 300 * MiB, heapBytes: 600 * MiB }), noV8)),
    ).not.toContain('glibc-arenas:warn');
  });

  it('rss-above-allocated: compares RSS outside the V8 heap with malloc live bytes, with a byte floor', () => {
    const s = snap({ rssBytes: 1300 * MiB, allocatedBytes: 200 * MiB });
    expect(ids(fragstat.doctor(s, noV8))).toContain('rss-above-allocated:critical'); // 6.5x and 1100 MiB over
    expect(ids(fragstat.doctor(s, { v8HeapBytes: 500 * MiB }))).toEqual(['rss-above-allocated:warn']); // 4x, 600 MiB
    expect(ids(fragstat.doctor(s, { v8HeapBytes: 1000 * MiB }))).toEqual([]); // 1.5x but only 100 MiB over
    expect(ids(fragstat.doctor(snap({ rssBytes: 60 * MiB, allocatedBytes: 3 * MiB }), noV8))).toEqual([]); // 20x of nothing
  });

  it('rss-above-allocated: weighs anonymous memory where it is known, not code and mapped files', () => {
    // 1300 MiB resident, of which 250 MiB anonymous (the rest: a large binary and mapped files).
    const s = snap({ rssBytes: 1300 * MiB, allocatedBytes: 200 * MiB });
    expect(ids(fragstat.doctor(s, { ...noV8, anonymousRssBytes: 250 * MiB }))).toEqual([]);
    const f = fragstat.doctor(s, { ...noV8, anonymousRssBytes: 900 * MiB });
    expect(ids(f)).toEqual(['rss-above-allocated:warn']); // 4.5x, 700 MiB over
    expect(f[0].title).toMatch(/^Anonymous RSS outside the V8 heap is 4.50x/);
    expect(f[0].numbers).toMatchObject({ rssBytes: 1300 * MiB, anonymousRssBytes: 900 * MiB });
    expect(ids(fragstat.doctor(s, { ...noV8, anonymousRssBytes: null }))).toContain(
      'rss-above-allocated:critical',
    );
    expect(() => fragstat.doctor(s, { anonymousRssBytes: -1 })).toThrow(RangeError);
    // This process's own figure: resident, anonymous, below RSS.
    const anon = fragstat.anonymousRssBytes()!;
    expect(anon).toBeGreaterThan(1 * MiB);
    expect(anon).toBeLessThan(fragstat.snapshot().rssBytes!);
  });

  it("advises nothing already set: an arena cap from the environment, jemalloc's background thread", () => {
    const r = runNode(
      [
        '-e',
        `const f = require('.');
         const s = { ...f.snapshot(), arenas: 8, freeBytes: 300 * 2 ** 20, heapBytes: 600 * 2 ** 20, rssBytes: 700 * 2 ** 20 };
         s.ratios = { ...s.ratios, fragmentation: 0.5, residentFragmentation: null };
         s.residentFreeBytes = null;
         process.stdout.write(f.doctor(s, { v8HeapBytes: 0 }).find((x) => x.id === 'glibc-arenas').advice);`,
      ],
      { env: { MALLOC_ARENA_MAX: '2' } },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/capped already \(2, by MALLOC_ARENA_MAX\)/);
    expect(r.stdout).not.toMatch(/MALLOC_ARENA_MAX=2/);
  });

  it.runIf(havePreload('jemalloc'))("knows when jemalloc's background thread is on", () => {
    const advice = (conf: string) => {
      const r = runNode(
        [
          '-e',
          `const f = require('.');
           const s = { ...f.snapshot(), freeBytes: 300 * 2 ** 20, heapBytes: 600 * 2 ** 20, residentFreeBytes: 300 * 2 ** 20 };
           s.ratios = { ...s.ratios, fragmentation: 0.5, residentFragmentation: 0.5 };
           process.stdout.write(f.doctor(s, { v8HeapBytes: 0 }).find((x) => x.id === 'trimmable-free-memory').advice);`,
        ],
        { preload: 'jemalloc', env: { MALLOC_CONF: conf } },
      );
      expect(r.code, r.stderr).toBe(0);
      return r.stdout;
    };
    const on = advice('background_thread:true');
    expect(on).toMatch(/background thread is on, so it returns these pages by itself within about \d+ ms/);
    expect(on).not.toMatch(/turn on/);
    expect(advice('background_thread:false')).toMatch(/turn on jemalloc's background thread/);
  });

  it('peak-above-current: from a monitor peak or glibc arena maxima', () => {
    const stats = { peakRssBytes: 2 * GiB } as fragstat.MonitorStats;
    const f = fragstat.doctor(snap({ rssBytes: 500 * MiB, allocatedBytes: 400 * MiB }), { ...noV8, stats });
    expect(ids(f)).toEqual(['peak-above-current:info']);
    expect(f[0].numbers).toEqual({ peakBytes: 2 * GiB, currentBytes: 500 * MiB });
  });

  it('mallinfo-may-wrap: info below 2 GiB of RSS, warn above', () => {
    expect(ids(fragstat.doctor(snap({ mayHaveWrapped: true }), noV8))).toEqual(['mallinfo-may-wrap:info']);
    expect(
      ids(
        fragstat.doctor(snap({ mayHaveWrapped: true, rssBytes: 3 * GiB, allocatedBytes: 2.9 * GiB }), noV8),
      ),
    ).toEqual(['mallinfo-may-wrap:warn']);
  });

  it('no-allocator-stats when only RSS is known', () => {
    const s = snap({
      allocator: 'unknown',
      allocatedBytes: null,
      freeBytes: null,
      heapBytes: null,
      ratios: { fragmentation: null, rss: null },
    });
    expect(ids(fragstat.doctor(s, noV8))).toEqual(['no-allocator-stats:info']);
  });

  it('sorts worst first and rejects what is not a snapshot', () => {
    const f = fragstat.doctor(
      snap({ freeBytes: 600 * MiB, heapBytes: 1000 * MiB, rssBytes: 1100 * MiB, mayHaveWrapped: true }),
      noV8,
    );
    expect(f[0].severity).toBe('critical');
    expect(f[f.length - 1].severity).toBe('info');
    expect(() => fragstat.doctor({} as Snapshot)).toThrow(TypeError);
    expect(() => fragstat.doctor(snap({}), { threshold: 1 } as never)).toThrow(/Unknown option "threshold"/);
  });
});

describe('on a real fragmented heap', () => {
  it('recommends a trim, and the trim releases what it said was free', () => {
    const r = runNode([
      '--expose-gc',
      '-e',
      `const f = require(process.cwd());
       const bufs = []; for (let i = 0; i < 4096; i++) bufs.push(Buffer.alloc(64 * 1024, 1));
       for (let i = 1; i < bufs.length; i += 2) bufs[i] = null;
       (async () => {
         // V8 frees backing stores after a GC, partly on a background thread (later under load):
         // collect until glibc counts the 128 MiB freed, or about two seconds.
         for (let i = 0; i < 80 && !(f.snapshot().freeBytes > 120 * 1024 * 1024 && i >= 6); i++) {
           gc(); await new Promise((r) => setTimeout(r, 25));
         }
         const findings = f.doctor();
         const t = await f.trim();
         const after = f.doctor();
         process.stdout.write(JSON.stringify({ findings, t, after, kept: bufs.length }));
       })();`,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    const trimmable = out.findings.find((x: Finding) => x.id === 'trimmable-free-memory');
    expect(trimmable, JSON.stringify(out.findings)).toBeDefined();
    expect(trimmable.numbers.freeBytes).toBeGreaterThan(120 * MiB);
    // The doctor reads the free memory in RAM (its default snapshot has detail) ...
    expect(trimmable.numbers.residentFreeBytes).toBeGreaterThan(120 * MiB);
    expect(out.t.releasedBytes).toBeGreaterThan(0.7 * 128 * MiB);
    // ... so once a trim gave it back, it stops advising one, though glibc still counts it free.
    expect(out.after.map((x: Finding) => x.id)).not.toContain('trimmable-free-memory');
  });
});

describe('arguments', () => {
  it('rejects v8HeapBytes that is not a byte count instead of inventing or hiding a finding', () => {
    const s = snap({ rssBytes: 300 * MiB, allocatedBytes: 200 * MiB });
    for (const v of [-1, -Infinity, Infinity]) {
      expect(() => fragstat.doctor(s, { v8HeapBytes: v }), String(v)).toThrow(
        /Expected a number from 0 to \d+ for options\.v8HeapBytes but received/,
      );
    }
    for (const v of [NaN, '100', null]) {
      expect(() => fragstat.doctor(s, { v8HeapBytes: v as never }), String(v)).toThrow(
        /Expected a number for options\.v8HeapBytes/,
      );
    }
    expect(fragstat.doctor(s, { v8HeapBytes: 0 })).toEqual([]);
  });

  it('rejects a stats option that is not monitor.stats()', () => {
    const s = snap({});
    for (const v of [null, 5, 'x', {}, { peakRssBytes: '2G' }, { peakRssBytes: -1 }, { peakRssBytes: NaN }]) {
      expect(() => fragstat.doctor(s, { ...noV8, stats: v as never }), JSON.stringify(v)).toThrow(
        /Expected monitor\.stats\(\) .* for options\.stats/,
      );
    }
    expect(fragstat.doctor(s, { ...noV8, stats: { peakRssBytes: null } as never })).toEqual([]);
  });

  it('names the missing field of a partial snapshot (doctor and toLogFields)', () => {
    const partial = { allocator: 'glibc' } as Snapshot;
    expect(() => fragstat.doctor(partial)).toThrow(
      /Expected a Snapshot for doctor\(snapshot\): snapshot\.rssBytes must be a number or null but received undefined/,
    );
    expect(() => fragstat.toLogFields(partial)).toThrow(
      /Expected a Snapshot for toLogFields\(snapshot\): snapshot\.rssBytes must be a number or null/,
    );
    const { ratios: _, ...noRatios } = snap({});
    expect(() => fragstat.doctor(noRatios as Snapshot)).toThrow(/snapshot\.ratios must be an object/);
    expect(() => fragstat.toLogFields(noRatios as Snapshot)).toThrow(/snapshot\.ratios must be an object/);
    expect(() => fragstat.doctor({ ...snap({}), detail: {} } as never)).toThrow(
      /snapshot\.detail must be null/,
    );
  });

  it('the advice names the script but none of its arguments, which can hold secrets', () => {
    const r = runNode([
      '-e',
      // As if node had run /srv/app/server.js (-e would otherwise be seen in execArgv).
      `process.argv = [process.argv[0], '/srv/app/server.js', '--db-url=postgres://u:hunter2@db/x', 'token=abc'];
       process.execArgv = [];
       const f = require('.').doctor({ allocator: 'unknown', timestamp: 0, rssBytes: 1, allocatedBytes: null,
         freeBytes: null, heapBytes: null, largestFreeBytes: null, arenas: null,
         ratios: { fragmentation: null, external: null, rss: null }, durationMs: 0, mayHaveWrapped: false,
         raw: {}, detail: null });
       console.log(f.map((x) => x.advice).join('\\n'));`,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/LD_PRELOAD=\S+ node \/srv\/app\/server\.js {2}# plus your arguments\n/);
    expect(r.stdout).not.toMatch(/hunter2|abc|db-url/);
  });
});
