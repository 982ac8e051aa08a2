// `fragstat run --profile FILE` writes a pprof heap profile of the application on SIGUSR2 and when
// it exits; `fragstat profile FILE` prints its top table.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Profile } from 'pprof-format';
import { afterAll, describe, expect, it } from 'vitest';
import { havePreload, MiB, root } from './helpers';

const bin = path.join(root, 'bin/fragstat.js');
const dir = mkdtempSync(path.join(os.tmpdir(), 'fragstat-profile-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Keeps 32 MiB of Buffers, asks the CLI (its parent) for a profile with SIGUSR2, waits until the
// CLI has written it, then drops the Buffers and exits through process.exit().
const app = path.join(dir, 'app.js');
writeFileSync(
  app,
  `const fs = require('node:fs');
   globalThis.keep = [];
   for (let i = 0; i < 32; i++) keep.push(Buffer.alloc(1024 * 1024, i + 1));
   const out = process.argv[2];
   if (process.argv[3] === 'signal') process.kill(process.ppid, 'SIGUSR2');
   const wait = setInterval(() => {
     if (process.argv[3] === 'signal' && fs.statSync(out).size === 0) return;
     clearInterval(wait);
     keep.length = 0;
     globalThis.gc();
     setTimeout(() => process.exit(0), 100);
   }, 20);`,
);

function fragstat(args: string[]) {
  const e: Record<string, string | undefined> = { ...process.env };
  delete e.LD_PRELOAD;
  delete e.MALLOC_CONF;
  return spawnSync(process.execPath, [bin, ...args], {
    cwd: root,
    env: e,
    encoding: 'utf8',
    timeout: 60_000,
  });
}

const bufferBytes = (file: string) => {
  const p = Profile.decode(gunzipSync(readFileSync(file)));
  const str = (i: unknown) => p.stringTable.strings[Number(i)];
  const fn = new Map(p.function.map((f) => [Number(f.id), str(f.name)]));
  const loc = new Map(p.location.map((l) => [Number(l.id), fn.get(Number(l.line[0].functionId)) ?? '']));
  return p.sample
    .filter((s) => /^node::NodeArrayBufferAllocator::Allocate/.test(loc.get(Number(s.locationId[0])) ?? ''))
    .reduce((t, s) => t + Number(s.value[1]), 0);
};

describe.runIf(havePreload('jemalloc'))('fragstat run --profile', () => {
  it('writes the live Buffers on SIGUSR2, and what is left at exit', () => {
    const file = path.join(dir, 'signal.pb.gz');
    const r = fragstat([
      'run',
      '--quiet',
      '--profile',
      file,
      '--',
      process.execPath,
      '--expose-gc',
      app,
      file,
      'signal',
    ]);
    expect(r.status, r.stderr).toBe(0);
    const written = [...r.stderr.matchAll(/wrote .*: ([\d.]+) MiB live/g)].map((m) => Number(m[1]));
    expect(written.length).toBe(2);
    // At the signal: the 32 MiB kept (and the process's own few MiB); at exit, the Buffers freed.
    expect(Math.abs(written[0] - written[1] - 32)).toBeLessThanOrEqual(32 * 0.25);
    expect(bufferBytes(file)).toBeLessThan(0.1 * 32 * MiB);
    expect(r.stderr).toMatch(/go tool pprof -top/);
  });

  it('writes the profile at exit, with the Buffers still alive, and `fragstat profile` prints its table', () => {
    const file = path.join(dir, 'exit.pb.gz');
    const keepApp = path.join(dir, 'keep.js');
    writeFileSync(
      keepApp,
      `globalThis.keep = []; for (let i = 0; i < 32; i++) keep.push(Buffer.alloc(1024 * 1024, 1));`,
    );
    const r = fragstat(['run', '--quiet', '--profile', file, '--', process.execPath, keepApp]);
    expect(r.status, r.stderr).toBe(0);
    const bytes = bufferBytes(file);
    expect(Math.abs(bytes - 32 * MiB)).toBeLessThanOrEqual(0.25 * 32 * MiB);

    const t = fragstat(['profile', file, '--top', '3']);
    expect(t.status, t.stderr).toBe(0);
    const rows = t.stdout.trim().split('\n');
    expect(rows[0]).toMatch(/MiB live in sampled stacks/);
    expect(rows[1]).toMatch(/self\s+self%\s+cumulative\s+function/);
    expect(rows).toHaveLength(5);
    // The first row: the Buffer allocator, with what the profile file holds for it (32 MiB kept;
    // at the default 512 KiB period each 1 MiB Buffer is sampled with probability 1 - e^-2).
    const first = /^\s+([\d.]+) MiB .*(node::NodeArrayBufferAllocator::Allocate.*)$/.exec(rows[2]);
    expect(first, rows[2]).not.toBeNull();
    expect(Math.abs(Number(first![1]) - 32)).toBeLessThanOrEqual(32 * 0.25);
  });

  it('with --profile-js, names the JavaScript function that allocated', () => {
    const file = path.join(dir, 'js.pb.gz');
    const jsApp = path.join(dir, 'js.js');
    writeFileSync(
      jsApp,
      `function keepSome() { globalThis.keep = []; for (let i = 0; i < 32; i++) keep.push(Buffer.alloc(1024 * 1024, 1)); }
       keepSome();`,
    );
    const r = fragstat(['run', '--quiet', '--profile-js', '--profile', file, '--', process.execPath, jsApp]);
    expect(r.status, r.stderr).toBe(0);
    // V8's log went to a temporary file, not the working directory.
    expect(readdirSync(root).filter((f) => /^isolate-.*-v8\.log$/.test(f))).toEqual([]);
    // Every frame of the allocating stack has the same cumulative bytes: ask for enough rows that ties
    // with native frames cannot push the JavaScript one out.
    const t = fragstat(['profile', file, '--top', '60', '--cumulative']);
    const row = t.stdout.split('\n').find((l) => / keepSome .*js\.js:1:\d+$/.test(l));
    expect(row, t.stdout).toBeDefined();
    const cumulative = Number(/^\s+[\d.]+ MiB\s+[\d.]+%\s+([\d.]+) MiB/.exec(row!)![1]);
    expect(Math.abs(cumulative - 32)).toBeLessThanOrEqual(32 * 0.25);
  });

  it('with --profile-inactive, samples nothing until asked', () => {
    const file = path.join(dir, 'inactive.pb.gz');
    const r = fragstat([
      'run',
      '--quiet',
      '--profile-inactive',
      '--profile',
      file,
      '--',
      process.execPath,
      '-e',
      '1',
    ]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/no heap profile was written/);
    expect(statSync(file).size).toBe(0);
  });
});

describe('fragstat run --profile / fragstat profile: usage', () => {
  it('rejects options that do not fit', () => {
    const a = fragstat(['run', '--profile-inactive', '--', 'node', '-e', '1']);
    expect(a.status).toBe(2);
    expect(a.stderr).toMatch(/--profile-inactive needs --profile/);
    const b = fragstat(['run', '--allocator', 'mimalloc', '--profile', 'x', '--', 'node', '-e', '1']);
    expect(b.status).toBe(2);
    expect(b.stderr).toMatch(/cannot run under mimalloc/);
    const c = fragstat(['profile']);
    expect(c.status).toBe(2);
    const junk = path.join(dir, 'junk');
    writeFileSync(junk, 'not a profile');
    const d = fragstat(['profile', junk]);
    expect(d.status).toBe(1);
    expect(d.stderr).toMatch(/is not a heap profile/);
  });
});
