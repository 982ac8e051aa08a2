// The fragstat command, end to end as a user runs it: start an app under an allocator, collect
// NDJSON samples, draw them.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { havePreload, root } from './helpers';

const bin = path.join(root, 'bin/fragstat.js');
const dir = mkdtempSync(path.join(os.tmpdir(), 'fragstat-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// An app that allocates 160 MiB of Buffers over a second, drops them, and exits with code 3.
const app = path.join(dir, 'app.js');
writeFileSync(
  app,
  `const keep = []; let i = 0;
   const t = setInterval(() => {
     for (let k = 0; k < 320; k++) keep.push(Buffer.alloc(64 * 1024, 1));
     if (++i === 8) { keep.length = 0; clearInterval(t); setTimeout(() => process.exit(3), 300); }
   }, 100);`,
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
    const r = fragstat(['run', '--interval', '100ms', '--out', out, '--', process.execPath, app]);
    expect(r.status).toBe(3);
    const samples = readSamples(out);
    expect(samples.length).toBeGreaterThanOrEqual(5);
    for (const s of samples) expect(s.allocator).toBe('glibc');
    const peak = Math.max(...samples.map((s) => s.allocatedBytes));
    expect(peak - samples[0].allocatedBytes).toBeGreaterThan(100 * 1024 * 1024);
    expect(samples[samples.length - 1].final).toBe(true);
    expect(r.stderr).toMatch(/\[fragstat\] glibc rss [\d.]+ MiB allocated [\d.]+ MiB free [\d.]+ MiB/);
  });

  for (const name of ['jemalloc', 'tcmalloc', 'mimalloc'] as const) {
    it.runIf(havePreload(name))(`--allocator ${name} preloads it`, () => {
      const out = path.join(dir, `${name}.ndjson`);
      const r = fragstat([
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
      ]);
      expect(r.status).toBe(3);
      expect(r.stderr).toBe('');
      const samples = readSamples(out);
      expect(samples.length).toBeGreaterThanOrEqual(3);
      for (const s of samples) expect(s.allocator).toBe(name);
    });
  }

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

describe('fragstat plot', () => {
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
