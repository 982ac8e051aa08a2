// heapProfile(): known allocations show up under the functions that made them, in the top table
// and in a pprof file a pprof decoder reads; freed ones go away; a diff shows only the growth.
// Where jemalloc's profiler is not available, the promise rejects with what to run instead.
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Profile } from 'pprof-format';
import { afterAll, describe, expect, it } from 'vitest';
import { evalJson, fixtureOutput, havePreload, preloadPath, root, runFixture, runNode } from './helpers';

interface Summary {
  sampledBytes: number;
  bufferBytes: number;
  zlibBytes: number;
  top: string[];
  diff: boolean;
}
interface Out {
  period: number;
  keptBufferBytes: number;
  allocatedForBuffers: number;
  allocatedForZlib: number;
  p0: Summary;
  p1: Summary;
  p2: Summary;
  growth: Summary;
  growthFromPprof: Summary;
  p3: Summary;
  dumpMs: number;
  pprof: string;
  tmpLeft: string[];
}

const within = (actual: number, expected: number, share: number) =>
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual(expected * share);

describe.runIf(havePreload('jemalloc'))('under jemalloc with prof:true', () => {
  const tmp = mkdtempSync(path.join(tmpdir(), 'fragstat-profile-test-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const run = () =>
    runFixture<Out>('profile.cjs', {
      preload: 'jemalloc',
      env: {
        MALLOC_CONF: 'prof:true,prof_active:true,lg_prof_sample:16',
        TMPDIR: tmp,
        BUFFER_MIB: '48',
        ZLIB_STREAMS: '60',
      },
    });
  let out: Out | null = null;
  const result = () => (out ??= run());

  it('counts the Buffers and zlib streams kept, under the functions that allocated them', () => {
    const r = result();
    expect(r.period).toBe(65536);
    // Before: neither; with the Buffers: within 25% of the bytes kept (and of what jemalloc counts).
    expect(r.p0.bufferBytes).toBeLessThan(0.1 * r.keptBufferBytes);
    within(r.p1.bufferBytes, r.keptBufferBytes, 0.25);
    within(r.p1.bufferBytes, r.allocatedForBuffers, 0.25);
    expect(r.p1.top[0]).toMatch(/^node::NodeArrayBufferAllocator::Allocate/);
    // With the zlib streams too: their bytes within 25% of jemalloc's allocated figure's growth.
    within(r.p2.zlibBytes, r.allocatedForZlib, 0.25);
    within(r.p2.bufferBytes, r.keptBufferBytes, 0.25);
    expect(r.p2.top.slice(0, 3).join('\n')).toMatch(/CompressionStream.*::AllocForZlib/);
    // Everything profiled adds up to at least what was kept.
    expect(r.p2.sampledBytes).toBeGreaterThanOrEqual(0.75 * (r.keptBufferBytes + r.allocatedForZlib));
  });

  it('no longer shows them once they are freed', () => {
    const r = result();
    expect(r.p3.bufferBytes).toBeLessThan(0.1 * r.keptBufferBytes);
    expect(r.p3.zlibBytes).toBeLessThan(0.1 * r.allocatedForZlib);
    expect(r.p2.sampledBytes - r.p3.sampledBytes).toBeGreaterThan(
      0.75 * (r.keptBufferBytes + r.allocatedForZlib),
    );
  });

  it('shows only the growth against a base profile (the object or its pprof bytes)', () => {
    const r = result();
    for (const g of [r.growth, r.growthFromPprof]) {
      expect(g.diff).toBe(true);
      within(g.zlibBytes, r.allocatedForZlib, 0.25);
      // The Buffers were there in the base: their change is small against their size.
      expect(Math.abs(g.bufferBytes)).toBeLessThan(0.1 * r.keptBufferBytes);
      expect(g.top[0]).toMatch(/CompressionStream.*::AllocForZlib/);
      within(g.sampledBytes, r.allocatedForZlib, 0.25);
    }
  });

  it('writes a gzipped profile.proto that pprof-format decodes, with names, mappings and units', () => {
    const r = result();
    const gz = Buffer.from(r.pprof, 'base64');
    expect([gz[0], gz[1]]).toEqual([0x1f, 0x8b]);
    const p = Profile.decode(gunzipSync(gz));
    const str = (i: unknown) => p.stringTable.strings[Number(i)];
    expect(p.sampleType.map((t) => `${str(t.type)}/${str(t.unit)}`)).toEqual([
      'inuse_objects/count',
      'inuse_space/bytes',
    ]);
    expect(`${str(p.periodType!.type)}/${str(p.periodType!.unit)}`).toBe('space/bytes');
    expect(Number(p.period)).toBe(65536);
    expect(str(p.defaultSampleType)).toBe('inuse_space');
    const names = p.function.map((f) => str(f.name));
    expect(names.some((n) => /^node::NodeArrayBufferAllocator::Allocate/.test(n))).toBe(true);
    expect(names.some((n) => /AllocForZlib/.test(n))).toBe(true);
    // Mappings are the files on disk the frames fall in, node's binary among them.
    expect(p.mapping.length).toBeGreaterThan(0);
    for (const m of p.mapping) {
      expect(existsSync(str(m.filename))).toBe(true);
      expect(Number(m.memoryLimit)).toBeGreaterThan(Number(m.memoryStart));
    }
    expect(p.mapping.some((m) => /node/.test(path.basename(str(m.filename))))).toBe(true);
    // Every location that names a mapping lies inside it; the samples add up to the profile's total.
    const byId = new Map(p.mapping.map((m) => [Number(m.id), m]));
    for (const l of p.location) {
      const m = byId.get(Number(l.mappingId));
      if (m) expect(Number(l.address)).toBeGreaterThanOrEqual(Number(m.memoryStart));
      if (m) expect(Number(l.address)).toBeLessThan(Number(m.memoryLimit));
    }
    const total = p.sample.reduce((t, s) => t + Number(s.value[1]), 0);
    within(total, r.p2.sampledBytes, 0.001);
  });

  it('removes its temporary dump file', () => {
    const r = result();
    expect(r.tmpLeft).toEqual([]);
    expect(readdirSync(tmp).filter((f) => f.startsWith('fragstat-heap-'))).toEqual([]);
  });

  it('rejects with what to run when jemalloc runs without prof:true', () => {
    const r = evalJson<{ code: string; message: string; status: { available: boolean } }>(
      `fragstat.heapProfile().then(() => console.log('{}'), (e) => console.log(JSON.stringify({ code: e.code, message: e.message, status: fragstat.heapProfilerStatus() })));`,
      { preload: 'jemalloc', env: { MALLOC_CONF: '' } },
    );
    expect(r.code).toBe('ERR_FRAGSTAT_PROFILE_UNAVAILABLE');
    expect(r.message).toMatch(/prof:true/);
    expect(r.status.available).toBe(false);
  });

  it('starts and stops sampling with setHeapProfilerActive', () => {
    const r = evalJson<{ before: boolean; was: boolean; after: boolean; back: boolean }>(
      `const before = fragstat.heapProfilerStatus().active; const was = fragstat.setHeapProfilerActive(true);
       const after = fragstat.heapProfilerStatus().active; fragstat.setHeapProfilerActive(false);
       console.log(JSON.stringify({ before, was, after, back: fragstat.heapProfilerStatus().active }));`,
      { preload: 'jemalloc', env: { MALLOC_CONF: 'prof:true,prof_active:false' } },
    );
    expect(r).toEqual({ before: false, was: false, after: true, back: false });
  });
});

interface JsOut {
  keptBufferBytes: number;
  sampledBytes: number;
  jsShare: number;
  makeBuffers: { cumulativeBytes: number } | null;
  outerCaller: { cumulativeBytes: number } | null;
  zlib: { selfBytes: number } | null;
  zlibWithJs: number;
}

describe.runIf(havePreload('jemalloc'))('JavaScript frames (setHeapProfilerJsFrames)', () => {
  const run = (jsFrames: boolean) =>
    fixtureOutput<JsOut>(
      'profile-js.cjs',
      runNode(
        [
          '--perf-basic-prof',
          '--interpreted-frames-native-stack',
          '--no-logfile-per-isolate',
          '--logfile=+',
          path.join(root, 'test/fixtures/profile-js.cjs'),
        ],
        {
          preload: 'jemalloc',
          env: {
            MALLOC_CONF: 'prof:true,prof_active:true,lg_prof_sample:16',
            JS_FRAMES: jsFrames ? '1' : '0',
          },
        },
      ),
    );

  it('names the JavaScript functions that allocated on the main thread, with their callers', () => {
    const r = run(true);
    expect(r.makeBuffers).not.toBeNull();
    expect(r.outerCaller).not.toBeNull();
    within(r.makeBuffers!.cumulativeBytes, r.keptBufferBytes, 0.25);
    within(r.outerCaller!.cumulativeBytes, r.keptBufferBytes, 0.25);
    // zlib allocates on the thread pool: native frames only, still named as before.
    expect(r.zlib!.selfBytes).toBeGreaterThan(0);
    expect(r.zlibWithJs).toBe(0);
    expect(r.jsShare).toBeGreaterThan(0);
    expect(r.jsShare).toBeLessThan(1);
  });

  it('without the hook, stacks stop at the builtin and no JavaScript function is named', () => {
    const r = run(false);
    expect(r.makeBuffers).toBeNull();
    expect(r.jsShare).toBe(0);
  });
});

describe('where jemalloc profiling is not available', () => {
  const reject = `fragstat.heapProfile().then(() => console.log('{}'), (e) => console.log(JSON.stringify({ code: e.code, message: e.message, name: e.constructor.name })));`;

  it('rejects under glibc naming the command to run instead', () => {
    const r = evalJson<{ code: string; message: string; name: string }>(reject);
    expect(r.name).toBe('Error');
    expect(r.code).toBe('ERR_FRAGSTAT_PROFILE_UNAVAILABLE');
    expect(r.message).toMatch(/allocates with glibc/);
    expect(r.message).toMatch(/MALLOC_CONF=prof:true/);
    expect(r.message).toMatch(/fragstat run --profile/);
    const lib = preloadPath('jemalloc');
    if (lib) expect(r.message).toContain(`LD_PRELOAD=${lib}`);
  });

  for (const other of ['tcmalloc', 'mimalloc'] as const) {
    it.runIf(preloadPath(other) !== null)(`rejects under ${other}`, () => {
      const r = evalJson<{ code: string; message: string }>(reject, { preload: other });
      expect(r.code).toBe('ERR_FRAGSTAT_PROFILE_UNAVAILABLE');
      expect(r.message).toMatch(new RegExp(`allocates with ${other}`));
    });
  }

  it('validates its options before anything else', () => {
    const r = evalJson<string[]>(
      `(async () => {
         const errs = [];
         for (const o of [5, { top: 0 }, { top: 1.5 }, { base: 'x' }, { base: Buffer.from('nope') }, { color: 1 }])
           await fragstat.heapProfile(o).then(() => errs.push('none'), (e) => errs.push(e.constructor.name + ': ' + e.message));
         try { fragstat.setHeapProfilerActive('yes'); } catch (e) { errs.push(e.constructor.name + ': ' + e.message); }
         try { fragstat.setHeapProfilerJsFrames(true); } catch (e) { errs.push(e.code); }
         console.log(JSON.stringify(errs));
       })();`,
    );
    expect(r[0]).toMatch(/^TypeError: Expected an object or undefined for heapProfile options/);
    expect(r[1]).toMatch(/^RangeError: .* for top but received 0/);
    expect(r[2]).toMatch(/^RangeError: Expected an integer .* for top/);
    expect(r[3]).toMatch(
      /^TypeError: Expected a heap profile or its pprof bytes for base but received a string/,
    );
    expect(r[4]).toMatch(/^TypeError: Expected a heap profile or its pprof bytes for base/);
    expect(r[5]).toMatch(/^TypeError: Unknown option "color"/);
    expect(r[6]).toMatch(/^TypeError: Expected a boolean for active but received a string/);
    expect(r[7]).toBe('ERR_FRAGSTAT_PROFILE_UNAVAILABLE');
  });
});

describe('heap_v2 parsing and unsampling', () => {
  const text = [
    'heap_v2/524288',
    '  t*: 3: 1572864 [0: 0]',
    '  t0: 3: 1572864 [0: 0]',
    '@ 0x7f0000001000 0x401000 0x402000',
    '  t*: 2: 1048576 [0: 0]',
    '  t0: 2: 1048576 [0: 0]',
    '@ 0x7f0000001000 0x403000',
    '  t*: 1: 524288 [0: 0]',
    '  t1: 1: 524288 [0: 0]',
    '',
    'MAPPED_LIBRARIES:',
    '00400000-00500000 r-xp 00000000 08:01 123 /usr/bin/node',
    '',
  ].join('\n');

  it('reads the period, each stack and the maps', async () => {
    const { parseHeapV2 } = await import('../src/profile/profile-heap');
    const { parseMaps } = await import('../src/profile/profile-symbols');
    const d = parseHeapV2(text);
    expect(d.samplePeriodBytes).toBe(524288);
    expect(d.stacks).toEqual([
      { addresses: [0x7f0000001000, 0x401000, 0x402000], sampledObjects: 2, sampledBytes: 1048576 },
      { addresses: [0x7f0000001000, 0x403000], sampledObjects: 1, sampledBytes: 524288 },
    ]);
    expect(parseMaps(d.maps)).toEqual([
      { start: 0x400000, end: 0x500000, perms: 'r-xp', offset: 0, path: '/usr/bin/node' },
    ]);
    expect(() => parseHeapV2('heap_v1/1\n')).toThrow(/not a jemalloc heap_v2 profile/);
  });

  it("scales by jeprof's 1 / (1 - exp(-mean size / period))", async () => {
    const { unsampleFactor } = await import('../src/profile/profile-heap');
    // Objects the size of the period are sampled with probability 1 - 1/e.
    expect(unsampleFactor(1, 524288, 524288)).toBeCloseTo(1 / (1 - Math.exp(-1)), 12);
    // 64-byte objects at 512 KiB: about 8193 bytes stand behind each sampled one.
    expect(unsampleFactor(10, 640, 524288) * 64).toBeCloseTo(64 / (1 - Math.exp(-64 / 524288)), 6);
    expect(unsampleFactor(0, 0, 524288)).toBe(0);
  });
});
