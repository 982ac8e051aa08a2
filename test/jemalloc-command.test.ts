// jemallocCommand(), which the doctor's and the verdict's advice print (and so logs and reports):
// it names no argument of the process, no code given with -e, no module path given to --require,
// whatever the shape of the command line, and the command it prints runs as printed.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { jemallocCommandFor } from '../src/read/libraries';
import { havePreload, root } from './helpers';

const secret = 'S3cr3tPw';
const dbUrl = `--db-url=postgres://admin:${secret}@db/prod`;
const node = '/usr/bin/node';
const cwd = '/srv/app';

/** The command after the environment, for a process of this shape. */
const command = (argv: string[], execArgv: string[] = []) => {
  const text = jemallocCommandFor({ argv, execArgv, cwd, execPath: node });
  expect(text).not.toContain(secret);
  return /LD_PRELOAD=\S+ (.*)$/.exec(text)![1];
};

describe('jemallocCommand() for each shape of command line', () => {
  it('a script: its path (relative under the working directory), never its arguments', () => {
    expect(command([node, '/srv/app/server.js', dbUrl])).toBe('node server.js  # plus your arguments');
    expect(command([node, '/srv/app/dist/server.js'])).toBe('node dist/server.js');
    expect(command([node, '/opt/other/server.js', dbUrl])).toBe(
      'node /opt/other/server.js  # plus your arguments',
    );
    expect(command([node, '/srv/app/my app.js'])).toBe("node 'my app.js'");
  });

  it('-e, --eval, -p, --print, -pe: no code and no arguments (argv[1] is not a script there)', () => {
    for (const execArgv of [
      ['-e', `connect("${secret}")`],
      [`--eval=connect("${secret}")`],
      ['--eval', `connect("${secret}")`],
      ['-p', `"${secret}"`],
      ['--print', `"${secret}"`],
      ['-pe', `"${secret}"`],
      ['--input-type=module', '-e', `"${secret}"`],
    ]) {
      expect(command([node, dbUrl], execArgv), execArgv.join(' ')).toMatch(
        /^node {2}# plus your -e\/-p code, (your node flags, )?your arguments$/,
      );
    }
    expect(command([node], ['-e', '1'])).toBe('node  # plus your -e/-p code');
    // Code that looks like a flag is still code.
    expect(command([node], ['-e', '--expose-gc'])).toBe('node  # plus your -e/-p code');
  });

  it('--require, -r, --import, --loader: the module paths are left out, the script kept', () => {
    expect(
      command(
        [node, '/srv/app/server.js', dbUrl],
        ['-r', `/etc/${secret}/preload.js`, '--import', 'tsx', `--require=/etc/${secret}.js`],
      ),
    ).toBe('node server.js  # plus your node flags, your arguments');
    expect(command([node, '/srv/app/server.js'], ['--loader', `./${secret}.mjs`])).toBe(
      'node server.js  # plus your node flags',
    );
  });

  it('keeps the memory-size flags and --expose-gc, which hold only numbers', () => {
    expect(
      command(
        [node, '/srv/app/server.js'],
        ['--max-old-space-size=4096', '--expose-gc', `--title=${secret}`, '--max_semi_space_size=64'],
      ),
    ).toBe(
      'node --max-old-space-size=4096 --expose-gc --max_semi_space_size=64 server.js  # plus your other node flags',
    );
  });

  it('the script from stdin, and the REPL', () => {
    expect(command([node, '-', dbUrl])).toBe('node  # plus your script on stdin, your arguments');
    expect(command([node, '-'])).toBe('node  # plus your script on stdin');
    expect(command([node])).toBe('node');
  });
});

describe('jemallocCommand() in a real process', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fragstat-jecmd-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const env = () => {
    const e: Record<string, string | undefined> = { ...process.env };
    delete e.LD_PRELOAD;
    delete e.MALLOC_CONF;
    e.PATH = `${path.dirname(process.execPath)}:${e.PATH ?? ''}`;
    return e;
  };
  // Prints the advice that names the command: the command itself, the doctor's glibc-arenas
  // finding and a fragmentation verdict, over made-up figures.
  const advise = `
    const fragstat = require(${JSON.stringify(root)});
    const MiB = 1048576;
    const snap = { ...fragstat.snapshot(), allocator: 'glibc', arenas: 8, freeBytes: 300 * MiB,
      heapBytes: 600 * MiB, rssBytes: 700 * MiB, allocatedBytes: 300 * MiB, residentFreeBytes: null,
      ratios: { fragmentation: 0.5, external: null, rss: 2, residentFragmentation: null } };
    const findings = fragstat.doctor(snap, { v8HeapBytes: 0 });
    const points = Array.from({ length: 40 }, (_, i) => ({ timestamp: 1.7e12 + i * 1e4,
      rssBytes: 200 * MiB + i * 2 * MiB, allocatedBytes: 50 * MiB, v8HeapBytes: 40 * MiB }));
    const verdict = fragstat.verdict(points, { jemallocCommand: fragstat.jemallocCommand() });
    process.stdout.write(JSON.stringify({ command: fragstat.jemallocCommand(), findings, verdict }));`;
  // Says which allocator serves it: what the printed command is run with.
  const probe = `process.stdout.write(require(${JSON.stringify(root)}).allocator().name)`;

  const check = (r: ReturnType<typeof spawnSync>) => {
    expect(r.status, String(r.stderr)).toBe(0);
    const out = String(r.stdout);
    expect(out).not.toContain(secret);
    const a = JSON.parse(out) as {
      command: string;
      findings: { id: string; advice: string }[];
      verdict: { kind: string; advice: string };
    };
    expect(a.findings.find((f) => f.id === 'glibc-arenas')!.advice).toContain(a.command);
    expect(a.verdict.kind).toBe('fragmentation');
    expect(a.verdict.advice).toContain(a.command);
    return a.command;
  };

  it('under node -e ... -- --db-url=<secret>: no secret, no code, and the command runs under jemalloc', () => {
    const cmd = check(
      spawnSync(process.execPath, ['-e', advise, '--', dbUrl], { cwd: dir, env: env(), encoding: 'utf8' }),
    );
    expect(cmd).toMatch(/ node {2}# plus your -e\/-p code, your arguments$/);
    if (!havePreload('jemalloc')) return;
    // As printed, through a shell, with the code on stdin where the comment says it goes.
    const r = spawnSync('sh', ['-c', cmd], { cwd: dir, env: env(), input: probe, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('jemalloc');
  });

  it('under node script.js --db-url=<secret>: the script only, and the command runs under jemalloc', () => {
    const script = path.join(dir, 'script.js');
    writeFileSync(script, `if (process.argv.length > 2) { ${advise} } else { ${probe} }`);
    const cmd = check(
      spawnSync(process.execPath, [script, dbUrl], { cwd: dir, env: env(), encoding: 'utf8' }),
    );
    expect(cmd).toMatch(/ node script\.js {2}# plus your arguments$/);
    if (!havePreload('jemalloc')) return;
    const r = spawnSync('sh', ['-c', cmd], { cwd: dir, env: env(), encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('jemalloc');
  });

  it('fragstat run --report over node -e ... -- --db-url=<secret>: not in the doctor, the verdict or the report JSON', () => {
    const bin = path.join(root, 'bin/fragstat.js');
    const out = path.join(dir, 'secret.ndjson');
    // An allocator without statistics (the test hook hides glibc's): the doctor inside the
    // application advises the jemalloc command (no-allocator-stats).
    const e = { ...env(), FRAGSTAT_TEST_HOOKS: '1', FRAGSTAT_HIDE_SYMBOLS: '*' };
    const run = spawnSync(
      process.execPath,
      [
        bin,
        'run',
        '--interval',
        '100ms',
        '--out',
        out,
        '--report',
        path.join(dir, 'secret.html'),
        '--',
        process.execPath,
        '-e',
        'setTimeout(() => {}, 500)',
        '--',
        dbUrl,
      ],
      { cwd: dir, env: e, encoding: 'utf8', timeout: 60_000 },
    );
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/run under jemalloc: MALLOC_CONF=/);
    expect(run.stderr).not.toContain(secret);
    const doctor = spawnSync(process.execPath, [bin, 'doctor', out], { cwd: dir, env: e, encoding: 'utf8' });
    expect(doctor.status, doctor.stderr).toBe(0);
    expect(doctor.stdout).toMatch(/no-allocator-stats|No allocator statistics/);
    expect(doctor.stdout).not.toContain(secret);
    const json = spawnSync(process.execPath, [bin, 'report', out, '--json'], {
      cwd: dir,
      env: e,
      encoding: 'utf8',
    });
    expect(json.status, json.stderr).toBe(0);
    expect(json.stdout).toMatch(/run under jemalloc/);
    expect(json.stdout).not.toContain(secret);
  });
});
