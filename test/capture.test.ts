// The capture before an OOM kill: the episode logic (pure), the allocator's statistics report,
// a monitor's bundle under a fake cgroup tree, a real process grown until the kernel's OOM killer
// ends it in a real memory cgroup (as root), and `fragstat run --capture-dir` near V8's heap limit.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { monitor, type CaptureInfo, type Verdict } from '../src';
import { binding } from '../src/binding';
import { captureMaxBytes } from '../src/capture/capture';
import { captureEpisode, readCaptureOptions } from '../src/capture/capture-episode';
import { readCaptureBundle } from '../src/capture/capture-bundle';
import { evalJson, havePreload, MiB, root, runNodeAsync } from './helpers';
import { makeCgroup, noCgroupReason, startIpcChild } from './realcgroup';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'fragstat-capture-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Polls `check` every 20 ms until it returns a value, or fails after `ms`. */
async function until<T>(what: string, check: () => T | null | undefined, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v !== null && v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const bundles = (dir: string) =>
  readdirSync(dir)
    .filter((n) => n.startsWith('fragstat-capture-'))
    .map((n) => path.join(dir, n));

/** Checks a bundle is complete, has the verdict, the breakdown and the samples, and keeps to its bound. */
function checkBundle(dir: string) {
  const b = readCaptureBundle(dir);
  expect(b.problems).toEqual([]);
  expect(b.complete).toBe(true);
  const names = b.manifest!.files.map((f) => f.name);
  for (const name of [
    'trigger.json',
    'status.txt',
    'smaps_rollup.txt',
    'verdict.json',
    'samples.ndjson',
    'findings.json',
    'breakdown.json',
  ]) {
    expect(names).toContain(name);
  }
  // Nothing on disk but what the manifest lists, and the manifest.
  expect(readdirSync(dir).sort()).toEqual([...names, 'manifest.json'].sort());
  const verdict = JSON.parse(b.texts['verdict.json']) as Verdict;
  expect(typeof verdict.kind).toBe('string');
  const breakdown = JSON.parse(b.texts['breakdown.json']) as {
    rssBytes: number;
    parts: Record<string, number>;
  };
  expect(breakdown.rssBytes).toBeGreaterThan(0);
  expect(breakdown.parts.v8Heap).toBeGreaterThan(0);
  const lines = b.texts['samples.ndjson']
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(lines[0].env).toBeTruthy();
  expect(lines.length - 1).toBe(b.manifest!.samplesWritten);
  expect(b.manifest!.samplesWritten).toBeGreaterThan(0);
  expect(b.texts['status.txt']).toMatch(/^VmRSS:/m);
  expect(b.texts['smaps_rollup.txt']).toMatch(/^Rss:/m);
  const bytes = readdirSync(dir).reduce((a, n) => a + statSync(path.join(dir, n)).size, 0);
  expect(bytes).toBeLessThanOrEqual(captureMaxBytes);
  return { ...b, bytes };
}

describe('the episode logic', () => {
  const o = { cgroupShare: 0.1, heapShare: 0.1, rearmShare: 0.8 };
  const at = (cgroupUsed: number | null, heapUsed = 10) => ({
    cgroup: cgroupUsed === null ? null : { usedBytes: cgroupUsed, limitBytes: 100 },
    heap: { usedBytes: heapUsed, limitBytes: 100 },
  });

  it('fires once as less than the share is left, and again only after usage fell below the re-arm share', () => {
    const steps: [number | null, number][] = [
      [50, 10], // armed, room to spare
      [89, 10], // 11% left: not yet
      [91, 10], // 9% left: fires (cgroup)
      [95, 10], // the same episode
      [85, 10], // fell back, but not below 80%
      [91, 10], // still the same episode: no second bundle
      [79, 10], // below 80%: re-armed
      [79, 95], // V8's heap: fires (heap)
      [null, 50], // no cgroup limit, heap at 50%: re-armed
      [null, 50],
    ];
    let armed = true;
    const fired: (string | null)[] = [];
    const armedAfter: boolean[] = [];
    for (const [c, h] of steps) {
      const r = captureEpisode(armed, at(c, h), o);
      armed = r.armed;
      fired.push(r.fire);
      armedAfter.push(armed);
    }
    expect(fired).toEqual([null, null, 'cgroup', null, null, null, null, 'heap', null, null]);
    expect(armedAfter).toEqual([true, true, false, false, false, false, true, false, true, true]);
  });

  it('fires for a level at or over its limit, and never without one', () => {
    expect(captureEpisode(true, at(100), o).fire).toBe('cgroup');
    expect(captureEpisode(true, at(130), o).fire).toBe('cgroup');
    expect(captureEpisode(true, { cgroup: null, heap: null }, o)).toEqual({ armed: true, fire: null });
  });

  it('validates its options', () => {
    expect(readCaptureOptions(undefined)).toBeNull();
    expect(readCaptureOptions({ dir: 'x' })).toEqual({
      dir: 'x',
      cgroupShare: 0.1,
      heapShare: 0.1,
      rearmShare: 0.8,
      cgroup: {},
    });
    expect(readCaptureOptions({ dir: 'x', cgroupShare: 0.3 })!.rearmShare).toBeCloseTo(0.7);
    expect(() => monitor({ start: false, capture: { dir: 1 } as never })).toThrow(
      /Expected a non-empty string for options.capture.dir but received number/,
    );
    expect(() => monitor({ start: false, capture: { dir: 'x', rearmShare: 0.95 } })).toThrow(RangeError);
    expect(() => monitor({ start: false, capture: { dir: 'x', when: 1 } as never })).toThrow(
      /Unknown option "when"/,
    );
    expect(() => monitor({ start: false, capture: { dir: 'x', cgroup: 'yes' } as never })).toThrow(
      /Expected a boolean or an object for options.capture.cgroup/,
    );
  });
});

describe("the allocator's statistics report", () => {
  it("glibc: malloc_info's XML, whole, or cut at the bound it is given", async () => {
    const whole = await binding.statsText(4 * MiB);
    if (whole === null) return expect(binding.statsText).toBeDefined(); // not glibc here
    expect(whole.format).toBe('malloc_info');
    expect(whole.truncated).toBe(false);
    expect(whole.text).toMatch(/^<malloc version="1">[\s\S]*<\/malloc>\n?$/);
    const cut = (await binding.statsText(200))!;
    expect(cut.truncated).toBe(true);
    expect(cut.text.length).toBe(199);
    expect(cut.text).toMatch(/^<malloc version="1">\n<heap nr="0">/);
    expect(() => binding.statsText(1)).toThrow(RangeError);
  });

  it.runIf(havePreload('jemalloc'))("jemalloc: malloc_stats_print's text", () => {
    const r = evalJson<{ format: string; head: string; truncated: boolean; cut: boolean; cutLength: number }>(
      `const { binding } = require(${JSON.stringify(path.join(root, 'dist/binding.js'))});
       Promise.all([binding.statsText(4 << 20), binding.statsText(1000)]).then(([a, b]) =>
         console.log(JSON.stringify({ format: a.format, head: a.text.slice(0, 200), truncated: a.truncated,
           cut: b.truncated, cutLength: b.text.length })));`,
      { preload: 'jemalloc' },
    );
    expect(r.format).toBe('jemalloc_stats');
    expect(r.head).toMatch(/Begin jemalloc statistics/);
    expect(r.truncated).toBe(false);
    expect(r).toMatchObject({ cut: true, cutLength: 1000 });
  });
});

describe('a monitor under a fake cgroup tree', () => {
  it('writes one complete bundle per episode, and another only after usage fell back', async () => {
    const cg = path.join(tmp, 'fake-cgroup');
    mkdirSync(cg, { recursive: true });
    const set = (anonMiB: number) => {
      writeFileSync(path.join(cg, 'memory.current'), `${anonMiB * MiB}\n`);
      writeFileSync(path.join(cg, 'memory.stat'), `anon ${anonMiB * MiB}\nfile 0\n`);
    };
    writeFileSync(path.join(cg, 'cgroup.controllers'), 'memory\n');
    writeFileSync(path.join(cg, 'memory.max'), `${100 * MiB}\n`);
    set(50);
    const dir = path.join(tmp, 'fake-bundles');
    const m = monitor({
      intervalMs: 20,
      maxOverhead: 0.1,
      capture: { dir, cgroup: { root: cg, path: '/' } },
    });
    const captures: CaptureInfo[] = [];
    m.on('capture', (i: CaptureInfo) => captures.push(i));
    let samples = 0;
    m.on('sample', () => samples++);
    try {
      // Ten samples with room to spare: nothing.
      await until('ten samples', () => (samples >= 10 ? true : null));
      expect(captures).toEqual([]);
      set(95); // 5% left
      const first = await until('a bundle', () => captures[0]);
      expect(first.reason).toBe('cgroup');
      const b = checkBundle(first.dir);
      expect(b.bytes).toBe(first.bytes);
      const trigger = JSON.parse(b.texts['trigger.json']) as { levels: { cgroup: { usedBytes: number } } };
      expect(trigger.levels.cgroup.usedBytes).toBe(95 * MiB);
      // Still near, then back to 85%: the same episode.
      let seen = samples;
      await until('ten more samples', () => (samples >= seen + 10 ? true : null));
      set(85);
      seen = samples;
      await until('ten more samples', () => (samples >= seen + 10 ? true : null));
      expect(captures.length).toBe(1);
      set(70); // re-armed
      seen = samples;
      await until('ten more samples', () => (samples >= seen + 10 ? true : null));
      set(95);
      const second = await until('a second bundle', () => captures[1]);
      checkBundle(second.dir);
      expect(bundles(dir).sort()).toEqual([first.dir, second.dir].sort());
    } finally {
      m.stop();
    }
  });
});

describe.runIf(havePreload('jemalloc'))('a bundle under jemalloc with its profiler on', () => {
  it("carries jemalloc's statistics and a heap profile", async () => {
    const cg = path.join(tmp, 'fake-cgroup-jemalloc');
    mkdirSync(cg, { recursive: true });
    writeFileSync(path.join(cg, 'cgroup.controllers'), 'memory\n');
    writeFileSync(path.join(cg, 'memory.max'), `${100 * MiB}\n`);
    writeFileSync(path.join(cg, 'memory.stat'), `anon ${95 * MiB}\n`);
    const dir = path.join(tmp, 'jemalloc-bundles');
    const r = await runNodeAsync(
      [
        '-e',
        `const fragstat = require(${JSON.stringify(root)});
         const m = fragstat.monitor({ intervalMs: 20, maxOverhead: 0.1,
           capture: { dir: ${JSON.stringify(dir)}, cgroup: { root: ${JSON.stringify(cg)}, path: '/' } } });
         m.on('error', (e) => { console.error(e); process.exit(1); });
         // The monitor's timer is unref'd: this keeps the process until the bundle is written.
         const alive = setInterval(() => {}, 100);
         m.on('capture', (info) => { clearInterval(alive); m.stop(); console.log(JSON.stringify(info)); });
         setTimeout(() => { console.error('no capture within 20 s'); process.exit(1); }, 20000).unref();`,
      ],
      { preload: 'jemalloc', env: { MALLOC_CONF: 'prof:true,prof_active:true,lg_prof_sample:12' } },
    );
    expect(r.code, r.stderr).toBe(0);
    const info = JSON.parse(r.stdout) as CaptureInfo;
    const b = checkBundle(info.dir);
    const byName = Object.fromEntries(b.manifest!.files.map((f) => [f.name, f.format]));
    expect(byName['jemalloc-stats.txt']).toBe('jemalloc_stats');
    expect(byName['jemalloc-heap.prof']).toBe('heap_v2');
    expect(b.texts['jemalloc-heap.prof']).toMatch(/^heap_v2\/4096\n/);
    expect(b.manifest!.omitted).toEqual([]);
  });
});

describe.runIf(noCgroupReason === null)('a real memory cgroup (as root)', () => {
  it('writes a complete bundle before the kernel OOM-kills a process growing native memory', async () => {
    const limit = 256 * MiB;
    const cg = makeCgroup(limit);
    const dir = path.join(tmp, 'oom-bundles');
    const c = startIpcChild('capture-child.cjs', ['oom', dir, '8']);
    try {
      await c.next('ready');
      cg.add(c.child.pid!);
      c.child.send({ cmd: 'go' });
      const capturing = await c.next<{ allocatedMiB: number }>('capturing', 60_000);
      const { info } = await c.next<{ info: CaptureInfo }>('captured', 60_000);
      const end = await c.exited;
      // Killed by the kernel: SIGKILL, counted by the cgroup's OOM killer.
      expect(end.signal, end.stderr).toBe('SIGKILL');
      // v1 counts it in memory.oom_control (kernel 4.13+), v2 in memory.events.
      const file = path.join(cg.dir, cg.version === 1 ? 'memory.oom_control' : 'memory.events');
      const oomKills = /^oom_kill (\d+)$/m.exec(readFileSync(file, 'utf8'));
      if (cg.version === 2) expect(oomKills).not.toBeNull();
      if (oomKills) expect(Number(oomKills[1])).toBeGreaterThanOrEqual(1);
      // It captured with less than 10% of the limit left, and grew on after it.
      expect(capturing.allocatedMiB * MiB).toBeGreaterThan(0.75 * limit);
      expect(info.reason).toBe('cgroup');
      const b = checkBundle(info.dir);
      const trigger = JSON.parse(b.texts['trigger.json']) as {
        levels: { cgroup: { usedBytes: number; limitBytes: number } };
        cgroup: { version: number; maxBytes: number };
      };
      expect(trigger.levels.cgroup.limitBytes).toBe(limit);
      expect(trigger.levels.cgroup.usedBytes).toBeGreaterThan(0.9 * limit);
      expect(trigger.cgroup).toMatchObject({ version: cg.version, maxBytes: limit });
      // glibc here: its XML report is in the bundle.
      if (b.manifest!.files.some((f) => f.format === 'malloc_info')) {
        expect(b.texts['malloc-info.xml']).toMatch(/<\/malloc>/);
      }
      console.log(
        `capture in a ${limit / MiB} MiB cgroup: ${info.bytes} bytes in ${info.durationMs.toFixed(0)} ms, ` +
          `${b.manifest!.samplesWritten} samples, OOM kill after it`,
      );
      // `fragstat report` opens it.
      const html = path.join(tmp, 'oom-report.html');
      const r = await runNodeAsync([path.join(root, 'bin/fragstat.js'), 'report', info.dir, '-o', html]);
      expect(r.code, r.stderr).toBe(0);
      expect(readFileSync(html, 'utf8')).toMatch(
        /captured near the cgroup&#39;s memory limit|captured near the cgroup's memory limit/,
      );
    } finally {
      c.child.kill('SIGKILL');
      await c.exited;
      cg.remove();
    }
  });
});

describe('fragstat run --capture-dir', () => {
  it("writes a bundle as the application nears V8's heap limit, and report and doctor open it", async () => {
    const dir = path.join(tmp, 'heap-bundles');
    const r = await runNodeAsync([
      path.join(root, 'bin/fragstat.js'),
      'run',
      '--capture-dir',
      dir,
      '--interval',
      '20ms',
      '--quiet',
      '--',
      process.execPath,
      '--max-old-space-size=32',
      path.join(root, 'test/fixtures/capture-child.cjs'),
      'heap',
      dir,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {
      manifest: string | null;
      level: { usedBytes: number; limitBytes: number };
    };
    expect(out.manifest).not.toBeNull();
    expect(out.level.usedBytes / out.level.limitBytes).toBeGreaterThan(0.9);
    const bundle = path.dirname(out.manifest!);
    expect(r.stderr).toContain(`[fragstat] capture (heap): ${bundle}`);
    const b = checkBundle(bundle);
    expect(b.manifest!.reason).toBe('heap');
    expect(bundles(dir)).toEqual([bundle]);

    const json = await runNodeAsync([path.join(root, 'bin/fragstat.js'), 'report', bundle, '--json']);
    expect(json.code, json.stderr).toBe(0);
    const report = JSON.parse(json.stdout) as { verdict: { kind: string } | null; breakdown: unknown };
    expect(report.breakdown).toEqual(JSON.parse(b.texts['breakdown.json']));
    expect(report.verdict?.kind).toBeTruthy();
    const doctor = await runNodeAsync([path.join(root, 'bin/fragstat.js'), 'doctor', bundle]);
    expect(doctor.code, doctor.stderr).toBe(0);
    expect(doctor.stdout).toMatch(/^bundle: captured near V8's heap limit/);
    expect(doctor.stdout).toMatch(/^verdict: /m);
  });

  it('report says an unfinished bundle is one', async () => {
    const dir = path.join(tmp, 'unfinished');
    mkdirSync(dir);
    const sample = { timestamp: Date.now(), allocator: 'glibc', rssBytes: 10 * MiB, allocatedBytes: MiB };
    writeFileSync(path.join(dir, 'samples.ndjson'), `${JSON.stringify(sample)}\n`);
    const r = await runNodeAsync([path.join(root, 'bin/fragstat.js'), 'doctor', dir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^bundle: an unfinished capture bundle \(no manifest.json/);
  });
});
