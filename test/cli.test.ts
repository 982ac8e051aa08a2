// The fragstat command, end to end as a user runs it: start an app under an allocator, collect
// NDJSON samples, draw them.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { havePreload, root } from './helpers';

const bin = path.join(root, 'bin/fragstat.js');
const dir = mkdtempSync(path.join(os.tmpdir(), 'fragstat-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// For the apps below: calls `then` once the recording (FRAGSTAT_TEST_OUT, when set) holds a line
// that `pick` accepts, polling it; exits with code 4 if none comes within 30 s.
const waitHelpers = `function waitForLine(pick, then) {
  const out = process.env.FRAGSTAT_TEST_OUT;
  if (!out) return then();
  const deadline = Date.now() + 30000;
  const poll = () => {
    let lines = [];
    try { lines = require('fs').readFileSync(out, 'utf8').split('\\n'); } catch {}
    const parsed = lines.map((l) => { try { return JSON.parse(l); } catch { return null; } }).filter(Boolean);
    if (pick(parsed)) return then();
    if (Date.now() > deadline) { console.error('no such line in ' + out); process.exit(4); }
    setTimeout(poll, 50);
  };
  poll();
}
function sampledAfter(t, then) {
  waitForLine((lines) => lines.some((l) => typeof l.timestamp === 'number' && l.timestamp > t), then);
}`;

// An app that allocates 160 MiB of Buffers in eight steps, drops them, and exits with code 3. With
// FRAGSTAT_TEST_OUT naming the recording, each step waits until the recording holds a sample taken
// after it (a sample's timestamp is read on the JS thread when the sample is asked for): however
// slow the machine, or however far the monitor stretches its interval, the samples see each step.
const app = path.join(dir, 'app.js');
writeFileSync(
  app,
  `${waitHelpers}
   const keep = []; let i = 0;
   const step = () => {
     for (let k = 0; k < 320; k++) keep.push(Buffer.alloc(64 * 1024, 1));
     if (++i < 8) return sampledAfter(Date.now(), step);
     sampledAfter(Date.now(), () => { keep.length = 0; setTimeout(() => process.exit(3), 300); });
   };
   setTimeout(step, 100);`,
);

function fragstat(args: string[], env: Record<string, string> = {}) {
  const e: Record<string, string | undefined> = { ...process.env, ...env };
  delete e.LD_PRELOAD;
  return spawnSync(process.execPath, [bin, ...args], {
    cwd: root,
    env: e,
    encoding: 'utf8',
    timeout: 60_000,
  });
}

const readSamples = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));

describe('fragstat run', () => {
  it('samples a node app without code changes, writes NDJSON, prints a summary, and passes on the exit code', () => {
    const out = path.join(dir, 'glibc.ndjson');
    const r = fragstat(['run', '--interval', '100ms', '--out', out, '--', process.execPath, app], {
      FRAGSTAT_TEST_OUT: out,
    });
    expect(r.status, r.stderr).toBe(3);
    const samples = readSamples(out);
    expect(samples.length).toBeGreaterThanOrEqual(5);
    for (const s of samples) expect(s.allocator).toBe('glibc');
    const peak = Math.max(...samples.map((s) => s.allocatedBytes));
    expect(peak - samples[0].allocatedBytes).toBeGreaterThan(100 * 1024 * 1024);
    expect(samples[samples.length - 1].final).toBe(true);
    // The final sample carries V8's heap like every other: a verdict would otherwise leave it out.
    expect(samples[samples.length - 1].v8HeapBytes).toBeGreaterThan(0);
    expect(r.stderr).toMatch(
      /\[fragstat\] glibc rss [\d.]+ MiB v8 [\d.]+ MiB allocated [\d.]+ MiB free [\d.]+ MiB/,
    );
  });

  for (const name of ['jemalloc', 'tcmalloc', 'mimalloc'] as const) {
    it.runIf(havePreload(name))(`--allocator ${name} preloads it`, () => {
      const out = path.join(dir, `${name}.ndjson`);
      const r = fragstat(
        [
          'run',
          '--allocator',
          name,
          '--interval',
          '100ms',
          '--quiet',
          '--out',
          out,
          '--',
          process.execPath,
          app,
        ],
        { FRAGSTAT_TEST_OUT: out },
      );
      expect(r.status, r.stderr).toBe(3);
      expect(r.stderr).toBe('');
      const samples = readSamples(out);
      expect(samples.length).toBeGreaterThanOrEqual(3);
      for (const s of samples) expect(s.allocator).toBe(name);
    });
  }

  it.runIf(havePreload('jemalloc'))(
    '--allocator jemalloc turns its background thread on, unless MALLOC_CONF already sets it',
    () => {
      const probe = path.join(dir, 'background-thread.js');
      writeFileSync(
        probe,
        `const f = require(${JSON.stringify(root)});
         const t = f.tunables().settings;
         process.stderr.write(JSON.stringify({ conf: process.env.MALLOC_CONF, on: t.background_thread.value }));`,
      );
      const read = (env: Record<string, string>) => {
        const r = fragstat(['run', '--allocator', 'jemalloc', '--quiet', '--', process.execPath, probe], env);
        expect(r.status, r.stderr).toBe(0);
        return JSON.parse(/\{.*\}/.exec(r.stderr)![0]) as { conf: string; on: boolean };
      };
      expect(read({})).toEqual({ conf: 'background_thread:true', on: true });
      expect(read({ MALLOC_CONF: 'dirty_decay_ms:5000' })).toEqual({
        conf: 'dirty_decay_ms:5000,background_thread:true',
        on: true,
      });
      expect(read({ MALLOC_CONF: 'background_thread:false' })).toEqual({
        conf: 'background_thread:false',
        on: false,
      });
    },
  );

  it('says how to install an allocator it cannot find', () => {
    const r = fragstat(['run', '--allocator', 'jemalloc', '--', process.execPath, app], {
      FRAGSTAT_HIDE_LIBRARIES: '1',
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /jemalloc is not installed .*\nInstall it \(Debian\/Ubuntu: apt-get install libjemalloc2/,
    );
  });

  it('exits as the app did when a signal killed it (128 + signal number)', () => {
    const segv = path.join(dir, 'segv.js');
    writeFileSync(segv, `process.kill(process.pid, 'SIGSEGV');`);
    expect(fragstat(['run', '--quiet', '--', process.execPath, segv]).status).toBe(
      128 + os.constants.signals.SIGSEGV,
    );
  });

  it('checks the output file before starting the app', () => {
    const marker = path.join(dir, 'started');
    const r = fragstat([
      'run',
      '--out',
      path.join(dir, 'no/such/dir/x.ndjson'),
      '--',
      process.execPath,
      '-e',
      `require('fs').writeFileSync(${JSON.stringify(marker)}, '')`,
    ]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^fragstat: cannot write .*x\.ndjson: ENOENT/);
    expect(() => readFileSync(marker)).toThrow();
  });

  it('says so when the command is a package manager instead of the app', () => {
    const npmCli = path.join(path.dirname(process.execPath), '../lib/node_modules/npm/bin/npm-cli.js');
    const r = fragstat(['run', '--', process.execPath, npmCli, '--version']);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(
      /the command is a package manager .*run the application itself, e\.g\. fragstat run -- node app\.js/,
    );
  });

  it('rejects bad command lines with the usage text (exit 2)', () => {
    for (const args of [
      ['run', '--', ''].slice(0, 2),
      ['run', '--allocator', 'dlmalloc', '--', 'node'],
      ['run', '--interval', 'soon', '--', 'node'],
      ['run', '--frobnicate', '--', 'node'],
      ['frob'],
    ]) {
      const r = fragstat(args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^fragstat: .+\n\nUsage:/);
    }
    expect(fragstat(['--help']).stdout).toMatch(/^Usage:/);
  });

  it('does not sample child processes of the app, and leaves the app alone if the CLI pipe closes', () => {
    const out = path.join(dir, 'children.ndjson');
    const parent = path.join(dir, 'parent.js');
    writeFileSync(
      parent,
      `const { execFileSync } = require('node:child_process');
       execFileSync(process.execPath, ['-e', 'setTimeout(() => {}, 300)']);
       setTimeout(() => {}, 300);`,
    );
    const r = fragstat([
      'run',
      '--interval',
      '50ms',
      '--quiet',
      '--out',
      out,
      '--',
      process.execPath,
      parent,
    ]);
    expect(r.status).toBe(0);
    const pids = new Set(readSamples(out).map((s) => s.pid));
    expect(pids.size).toBe(1);
  });
});

describe('fragstat run: what --out may write', () => {
  const quick = [process.execPath, '-e', 'setTimeout(() => {}, 300)'];

  it('does not follow a symbolic link at the output path', () => {
    const target = path.join(dir, 'precious.txt');
    writeFileSync(target, 'keep me\n');
    const link = path.join(dir, 'link.ndjson');
    symlinkSync(target, link);
    const r = fragstat(['run', '--out', link, '--', ...quick]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^fragstat: refusing to write .*link\.ndjson: it is a symbolic link/);
    expect(readFileSync(target, 'utf8')).toBe('keep me\n');
  });

  it("refuses to overwrite the application's own script, and says so", () => {
    const script = path.join(dir, 'own.js');
    writeFileSync(script, 'setTimeout(() => {}, 100);\n');
    const r = fragstat(['run', '--out', script, '--', process.execPath, script]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(
      /^fragstat: refusing to write .*own\.js: it is .*own\.js, a file of the command/,
    );
    expect(readFileSync(script, 'utf8')).toBe('setTimeout(() => {}, 100);\n');
  });

  it('creates the file without write access for others', () => {
    const out = path.join(dir, 'mode.ndjson');
    const r = fragstat(['run', '--quiet', '--out', out, '--', ...quick]);
    expect(r.status, r.stderr).toBe(0);
    expect(statSync(out).mode & 0o022).toBe(0);
    expect(readSamples(out).length).toBeGreaterThanOrEqual(1);
  });

  it('rejects an interval the monitor would reject, instead of running with no samples', () => {
    const r = fragstat(['run', '--interval', '3000000s', '--', ...quick]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^fragstat: interval "3000000s" is above 24 days\n\nUsage:/);
  });

  it('says there were no samples, and why, even with --quiet', () => {
    let r = fragstat(['run', '--quiet', '--', 'true']); // not a node process
    expect(r.stderr).toMatch(/\[fragstat\] no samples/);
    const npmCli = path.join(path.dirname(process.execPath), '../lib/node_modules/npm/bin/npm-cli.js');
    r = fragstat(['run', '--quiet', '--', process.execPath, npmCli, '--version']);
    expect(r.stderr).toMatch(/sampling failed in the application: the command is a package manager/);
  });
});

describe('fragstat plot', () => {
  it('draws 50,000 samples (14 hours at 1 s)', () => {
    const big = path.join(dir, 'long.ndjson');
    const lines = Array.from({ length: 50_000 }, (_, i) =>
      JSON.stringify({
        allocator: 'glibc',
        timestamp: 1e12 + i * 1000,
        rssBytes: (100 + (i % 7)) * 1048576,
        allocatedBytes: 50 * 1048576,
        freeBytes: 20 * 1048576,
      }),
    );
    writeFileSync(big, `${lines.join('\n')}\n`);
    const svg = path.join(dir, 'long.svg');
    const r = fragstat(['plot', big, '-o', svg]);
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(svg, 'utf8').match(/<polyline /g)).toHaveLength(3);
  });

  it('refuses to overwrite its input, and says clearly when the output directory is missing', () => {
    const input = path.join(dir, 'input.ndjson');
    const text = `${JSON.stringify({ allocator: 'glibc', timestamp: 1, rssBytes: 1048576 })}\n`;
    writeFileSync(input, text);
    let r = fragstat(['plot', input, '-o', input]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^fragstat: refusing to write .*input\.ndjson: it is the plot's input/);
    expect(readFileSync(input, 'utf8')).toBe(text);
    r = fragstat(['plot', input, '-o', path.join(dir, 'missing/dir/o.svg')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(
      /^fragstat: cannot write .*o\.svg: ENOENT, its directory .*missing\/dir does not exist\n$/,
    );
  });

  it('draws RSS, allocated and free for one file, one line per file for several', () => {
    const one = path.join(dir, 'one.svg');
    let r = fragstat(['plot', path.join(dir, 'glibc.ndjson'), '-o', one]);
    expect(r.status, r.stderr).toBe(0);
    const svg = readFileSync(one, 'utf8');
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.match(/<polyline /g)).toHaveLength(3);
    for (const label of ['>rss<', '>allocated<', '>free<']) expect(svg).toContain(label);
    const files = ['glibc', 'jemalloc', 'tcmalloc', 'mimalloc']
      .map((n) => path.join(dir, `${n}.ndjson`))
      .filter((f) => {
        try {
          readFileSync(f);
          return true;
        } catch {
          return false;
        }
      });
    // Without the optional allocators only glibc's samples exist: a copy stands in for a second run.
    if (files.length === 1) {
      files.push(path.join(dir, 'glibc-again.ndjson'));
      writeFileSync(files[1], readFileSync(files[0]));
    }
    const many = path.join(dir, 'many.svg');
    r = fragstat(['plot', ...files, '-o', many]);
    expect(r.status, r.stderr).toBe(0);
    const svg2 = readFileSync(many, 'utf8');
    expect(svg2.match(/<polyline /g)).toHaveLength(files.length);
    expect(svg2).toContain('>glibc (glibc)<');
    // Every legend label (one per file) fits inside the drawing, at 7.5 px a character: 12 px
    // DejaVu Sans averages about 6.5 px for lower case and 8 for capitals.
    const fits = (svg: string, count: number) => {
      const width = Number(/<svg [^>]*width="(\d+)"/.exec(svg)![1]);
      const labels = [...svg.matchAll(/<text x="([\d.]+)" y="[\d.]+">([^<]+)<\/text>/g)];
      expect(labels).toHaveLength(count);
      for (const [, x, text] of labels) {
        const plain = text.replace(/&(amp|lt|gt|quot);/g, '_');
        expect(Number(x) + 7.5 * plain.length).toBeLessThanOrEqual(width);
      }
    };
    fits(svg2, files.length);
    const long = path.join(dir, 'PROD-WEB-MEMORY-WORKLOAD & a much longer configuration name.ndjson');
    writeFileSync(long, readFileSync(files[0]));
    r = fragstat(['plot', files[0], long, '-o', many]);
    expect(r.status, r.stderr).toBe(0);
    const svg3 = readFileSync(many, 'utf8');
    expect(svg3).toContain('>PROD-WEB-MEMORY-WORKLOAD &amp; a much longer configuration name (glibc)<');
    fits(svg3, 2);
  });

  it('fails clearly on a missing or malformed file', () => {
    let r = fragstat(['plot', path.join(dir, 'missing.ndjson'), '-o', path.join(dir, 'x.svg')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^fragstat: cannot read .*missing\.ndjson/);
    const bad = path.join(dir, 'bad.ndjson');
    writeFileSync(bad, '{"timestamp": 1}\nnot json\n');
    r = fragstat(['plot', bad, '-o', path.join(dir, 'x.svg')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/bad\.ndjson:2 is not a JSON line/);
    expect(fragstat(['plot', bad]).status).toBe(2);
  });
});

describe('fragstat run --auto-trim, signals, and fragstat doctor', () => {
  // A burst that leaves about 64 MiB of 64 KiB holes, then a quiet process: for 5 s, or with
  // FRAGSTAT_TEST_OUT until the recording's trims have released more than 32 MiB.
  const bursty = path.join(dir, 'bursty.js');
  writeFileSync(
    bursty,
    `${waitHelpers}
     let keep = [];
     const t0 = Date.now();
     while (Date.now() - t0 < 1500) {
       keep.push(Buffer.alloc(64 * 1024, 1));
       if (keep.length === 2048) keep = keep.filter((_, i) => i % 2 === 0);
     }
     keep = keep.slice(0, 1024);
     setTimeout(() => globalThis.gc(), 100);
     const end = () => process.exit(keep.length === 1024 ? 0 : 1);
     const released = (lines) => lines.reduce((a, l) => a + (l.trim ? l.trim.releasedBytes : 0), 0);
     if (process.env.FRAGSTAT_TEST_OUT) waitForLine((lines) => released(lines) > 32 * 1024 * 1024, end);
     else setTimeout(end, 5000);`,
  );

  // Runs the bursty app under fragstat run, with `flags`, recording into `name`.ndjson.
  const runBursty = (name: string, flags: string[], env: Record<string, string> = {}) => {
    const out = path.join(dir, `${name}.ndjson`);
    const r = fragstat(
      ['run', ...flags, '--interval', '500ms', '--out', out, '--', process.execPath, '--expose-gc', bursty],
      env,
    );
    return { out, r };
  };

  it('--auto-trim trims inside the application, records each trim, and the plot marks them', () => {
    const out = path.join(dir, 'autotrim.ndjson');
    const { r } = runBursty('autotrim', ['--auto-trim'], { FRAGSTAT_TEST_OUT: out });
    expect(r.status, r.stderr).toBe(0);
    const trims = readSamples(out).filter((l) => l.trim);
    expect(trims.length).toBeGreaterThanOrEqual(1);
    expect(trims.reduce((a, l) => a + l.trim.releasedBytes, 0)).toBeGreaterThan(32 * 1024 * 1024);
    // The doctor's reading of the run comes at the end, with the trims counted.
    expect(r.stderr).toMatch(/\[fragstat\] at the end:\n {2}verdict: /);
    expect(r.stderr).toMatch(new RegExp(`trims: ${trims.length}, [\\d.]+ MiB released`));
    const svg = path.join(dir, 'autotrim.svg');
    expect(fragstat(['plot', out, '-o', svg]).status).toBe(0);
    expect(readFileSync(svg, 'utf8').match(/class="marker"/g)?.length).toBe(trims.length);
  });

  it('without --auto-trim nothing trims', () => {
    const { out, r } = runBursty('no-autotrim', []);
    expect(r.status, r.stderr).toBe(0);
    expect(readSamples(out).filter((l) => l.trim)).toEqual([]);
  });

  it('takes a final sample when SIGTERM ends the application, and exits as it did', async () => {
    const forever = path.join(dir, 'forever.js');
    writeFileSync(forever, 'setInterval(() => {}, 1000);');
    const out = path.join(dir, 'sigterm.ndjson');
    const child = spawn(
      process.execPath,
      [bin, 'run', '--quiet', '--interval', '200ms', '--out', out, '--', process.execPath, forever],
      {
        cwd: root,
        stdio: 'ignore',
      },
    );
    const closed = new Promise((resolve) => child.on('close', (c) => resolve(c)));
    // Three samples recorded, however long they take to come, then the signal.
    const recorded = () => {
      try {
        return readSamples(out).length;
      } catch {
        return 0;
      }
    };
    await expect.poll(recorded, { timeout: 30_000, interval: 50 }).toBeGreaterThanOrEqual(3);
    child.kill('SIGTERM');
    const code = await closed;
    expect(code).toBe(128 + os.constants.signals.SIGTERM);
    const lines = readSamples(out);
    expect(lines.length).toBeGreaterThanOrEqual(3);
    expect(lines[lines.length - 1].final).toBe(true);
  });

  it('fragstat doctor reads a recording: the verdict and the findings, as text', () => {
    const out = path.join(dir, 'doctor.ndjson');
    expect(
      fragstat(['run', '--quiet', '--interval', '100ms', '--out', out, '--', process.execPath, app], {
        FRAGSTAT_TEST_OUT: out,
      }).status,
    ).toBe(3);
    const r = fragstat(['doctor', out]);
    expect(r.status, r.stderr).toBe(0);
    // A recording of a few seconds is too short for a verdict, and the doctor says how long to wait.
    expect(r.stdout).toMatch(/^verdict: insufficient-evidence: .* of 90 s sampled/m);
    expect(r.stdout).toMatch(/^  confidence: low; sample about 2 min more for a firmer one$/m);
    expect(r.stdout).toMatch(/^findings/m);
    expect(fragstat(['doctor']).status).toBe(2);
    expect(fragstat(['doctor', out, '--json']).status).toBe(2);
    const missing = fragstat(['doctor', path.join(dir, 'missing.ndjson')]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/cannot read .*missing\.ndjson: ENOENT/);
  });
});
