// `fragstat run` and the signals that end a process, with real processes: fragstat passes them on
// and the application's final sample, report and profile are still written; neither fragstat nor
// the application outlives the other, nor whoever started fragstat. Every wait is for an event
// (a line on a pipe, a process gone) under a deadline, never a guess at how long something takes.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Profile } from 'pprof-format';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { havePreload, root } from './helpers';

const bin = path.join(root, 'bin/fragstat.js');
const dir = mkdtempSync(path.join(os.tmpdir(), 'fragstat-signals-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Prints "ready <pid> <ppid>" once running, then idles; `handler` adds its own signal handling.
const appFile = (name: string, handler = '') => {
  const file = path.join(dir, `${name}.js`);
  writeFileSync(
    file,
    `${handler}
     setInterval(() => {}, 1000);
     process.stdout.write('ready ' + process.pid + ' ' + process.ppid + '\\n');`,
  );
  return file;
};

/** Every pid a test started or learnt of: killed after it, whatever happened. */
const started = new Set<number>();
afterEach(() => {
  for (const pid of started) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  started.clear();
});

const env = () => {
  const e: Record<string, string | undefined> = { ...process.env };
  delete e.LD_PRELOAD;
  delete e.MALLOC_CONF;
  return e;
};

/** Collects a stream's text and resolves when `pattern` appears (or rejects at the deadline). */
function watchText(stream: NodeJS.ReadableStream) {
  let text = '';
  const waiters: { re: RegExp; resolve: (m: RegExpExecArray) => void }[] = [];
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    text += chunk;
    for (const w of [...waiters]) {
      const m = w.re.exec(text);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  });
  return {
    get text() {
      return text;
    },
    wait(re: RegExp, ms = 20_000): Promise<RegExpExecArray> {
      const m = re.exec(text);
      if (m) return Promise.resolve(m);
      return new Promise((resolve, reject) => {
        const w = { re, resolve };
        waiters.push(w);
        setTimeout(() => {
          if (!waiters.includes(w)) return;
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`no ${re} within ${ms} ms in:\n${text}`));
        }, ms).unref();
      });
    },
  };
}

/** Starts `fragstat run <args> -- node <app>`; resolves once the app says it is ready. */
async function start(args: string[], app: string, o: { env?: Record<string, string>; group?: boolean } = {}) {
  const child = spawn(process.execPath, [bin, 'run', ...args, '--', process.execPath, app], {
    cwd: root,
    env: { ...env(), ...o.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: o.group ?? false,
  });
  started.add(child.pid!);
  const stdout = watchText(child.stdout!);
  const stderr = watchText(child.stderr!);
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  const m = await stdout.wait(/ready (\d+) (\d+)\n/);
  const appPid = Number(m[1]);
  started.add(appPid);
  expect(Number(m[2])).toBe(child.pid); // the app is fragstat's own child
  return { child, appPid, stdout, stderr, closed };
}

/** Whether `pid` has ended (a zombie nobody reaps has ended too). */
function gone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

// How long a process may take to be gone: the hooks look for a gone CLI or launcher every second,
// and a loaded machine is late with every timer. Costs nothing when it works.
const GONE_MS = 20_000;

/** Resolves with the time it took once every pid is gone; rejects after `ms`. */
async function allGone(pids: number[], ms: number): Promise<number> {
  const t0 = Date.now();
  while (!pids.every(gone)) {
    if (Date.now() - t0 > ms)
      throw new Error(`still running after ${ms} ms: ${pids.filter((p) => !gone(p))}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return Date.now() - t0;
}

const lastLine = (file: string) => {
  const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
  return JSON.parse(lines[lines.length - 1]) as Record<string, unknown>;
};

const SIGTERM_EXIT = 128 + os.constants.signals.SIGTERM;

describe('fragstat run: SIGTERM to fragstat ends the application, with its final writes', () => {
  it('--report: the app is gone, exit 143, the final sample and the report are written', async () => {
    const out = path.join(dir, 'report.ndjson');
    const html = path.join(dir, 'report.html');
    const r = await start(['--quiet', '--interval', '100ms', '--out', out, '--report', html], appFile('r'));
    r.child.kill('SIGTERM');
    expect((await r.closed).code).toBe(SIGTERM_EXIT);
    await allGone([r.appPid], GONE_MS);
    expect(lastLine(out).final).toBe(true);
    expect(readFileSync(html, 'utf8')).toContain('ended by SIGTERM');
    // The report's findings, taken before the signal ended the app, are in the recording.
    expect(readFileSync(out, 'utf8')).toMatch(/"findings":\[/);
  });

  it('--auto-trim: the app is gone, exit 143, the final sample is written', async () => {
    const out = path.join(dir, 'autotrim.ndjson');
    const r = await start(['--quiet', '--auto-trim', '--interval', '100ms', '--out', out], appFile('t'));
    r.child.kill('SIGTERM');
    expect((await r.closed).code).toBe(SIGTERM_EXIT);
    await allGone([r.appPid], GONE_MS);
    expect(lastLine(out).final).toBe(true);
  });

  it.runIf(havePreload('jemalloc'))(
    '--profile: the app is gone, exit 143, the final sample and a non-empty profile are written',
    async () => {
      const out = path.join(dir, 'profile.ndjson');
      const file = path.join(dir, 'term.pb.gz');
      const r = await start(['--quiet', '--out', out, '--profile', file], appFile('p'));
      r.child.kill('SIGTERM');
      const { code } = await r.closed;
      expect(code, r.stderr.text).toBe(SIGTERM_EXIT);
      await allGone([r.appPid], GONE_MS);
      expect(lastLine(out).final).toBe(true);
      expect(statSync(file).size).toBeGreaterThan(0);
      expect(Profile.decode(gunzipSync(readFileSync(file))).sample.length).toBeGreaterThan(0);
    },
  );

  it.runIf(havePreload('jemalloc'))(
    "an application's own SIGTERM handler is left to end it; the hooks' final work runs at its exit",
    async () => {
      const out = path.join(dir, 'own.ndjson');
      const file = path.join(dir, 'own.pb.gz');
      const html = path.join(dir, 'own.html');
      const app = appFile(
        'own',
        `process.on('SIGTERM', () => { process.stdout.write('own handler\\n'); setTimeout(() => process.exit(7), 50); });`,
      );
      const r = await start(['--quiet', '--out', out, '--report', html, '--profile', file], app);
      r.child.kill('SIGTERM');
      expect((await r.closed).code).toBe(7);
      expect(r.stdout.text).toContain('own handler');
      expect(lastLine(out).final).toBe(true);
      expect(statSync(file).size).toBeGreaterThan(0);
      expect(readFileSync(html, 'utf8')).toContain('exited with code 7');
    },
  );
});

describe('fragstat run: SIGINT', () => {
  it('sent to fragstat alone, is passed on: the app ends by it (exit 130) with its final sample', async () => {
    const out = path.join(dir, 'int.ndjson');
    const r = await start(['--quiet', '--out', out], appFile('int'), { env: { FRAGSTAT_DEBUG: '1' } });
    r.child.kill('SIGINT');
    expect((await r.closed).code).toBe(128 + os.constants.signals.SIGINT);
    await allGone([r.appPid], GONE_MS);
    expect(r.stderr.text).toMatch(/SIGINT was sent to fragstat alone: passing it on/);
    expect(lastLine(out).final).toBe(true);
  });

  it('sent to the process group (Ctrl-C), reaches the app once: fragstat does not pass it on', async () => {
    const app = appFile('group', `process.on('SIGINT', () => process.stdout.write('app got SIGINT\\n'));`);
    const r = await start(['--quiet'], app, { group: true, env: { FRAGSTAT_DEBUG: '1' } });
    process.kill(-r.child.pid!, 'SIGINT'); // what the terminal does on Ctrl-C
    await r.stdout.wait(/app got SIGINT\n/);
    // fragstat has decided: the app had it already.
    await r.stderr.wait(/SIGINT: the application has it already, not passed on/);
    r.child.kill('SIGTERM');
    expect((await r.closed).code).toBe(SIGTERM_EXIT);
    expect(r.stdout.text.match(/app got SIGINT/g)).toHaveLength(1);
    expect(r.stderr.text).not.toMatch(/passing it on/);
  });
});

describe('fragstat run: nobody is left running', () => {
  it('SIGKILL of fragstat ends the application within a few seconds', async () => {
    const out = path.join(dir, 'killed.ndjson');
    const r = await start(['--quiet', '--out', out], appFile('k'));
    r.child.kill('SIGKILL');
    await r.closed;
    await allGone([r.appPid], GONE_MS);
  });

  it.runIf(havePreload('jemalloc'))(
    'SIGKILL of fragstat --profile: the app ends and removes the dump directory nobody will read',
    async () => {
      // A temporary directory of this test's own: other runs' dump directories never show in it.
      const tmp = mkdtempSync(path.join(dir, 'tmp-'));
      const r = await start(['--quiet', '--profile', path.join(dir, 'k.pb.gz')], appFile('kp'), {
        env: { TMPDIR: tmp },
      });
      expect(readdirSync(tmp).filter((f) => f.startsWith('fragstat-run-'))).toHaveLength(1);
      r.child.kill('SIGKILL');
      await r.closed;
      await allGone([r.appPid], GONE_MS);
      expect(readdirSync(tmp)).toEqual([]);
    },
  );

  // A stand-in for npx: npm exec starts a bin through `sh -c`, and ends on SIGTERM without
  // passing it on; the shell stays, waiting for fragstat. And a node parent with no shell between.
  for (const shape of ['sh -c', 'node'] as const) {
    it(`the launcher (${shape}) killed: fragstat ends the app and itself within a few seconds, after the final sample`, async () => {
      const out = path.join(dir, `launcher-${shape.replace(/\W/g, '')}.ndjson`);
      const args = [bin, 'run', '--quiet', '--out', out, '--', process.execPath, appFile('l')];
      const launch =
        shape === 'sh -c'
          ? `spawn('sh', ['-c', ${JSON.stringify(args.map((a) => `'${a}'`).join(' '))}].map(String), { stdio: 'inherit' })`
          : `spawn(process.execPath, ${JSON.stringify(args)}, { stdio: 'inherit' })`;
      const parent = spawn(
        process.execPath,
        ['-e', `const { spawn } = require('node:child_process'); ${launch}; setInterval(() => {}, 1000);`],
        { cwd: root, env: env(), stdio: ['ignore', 'pipe', 'pipe'] },
      );
      started.add(parent.pid!);
      const stdout = watchText(parent.stdout!);
      const stderr = watchText(parent.stderr!);
      const m = await stdout.wait(/ready (\d+) (\d+)\n/);
      const appPid = Number(m[1]);
      const cliPid = Number(m[2]);
      started.add(appPid).add(cliPid);
      parent.kill('SIGTERM');
      await allGone([cliPid, appPid], GONE_MS);
      await stderr.wait(/the process that started fragstat \(pid \d+\) is gone: ending the application/);
      expect(lastLine(out).final).toBe(true);
      expect(existsSync(out)).toBe(true);
    });
  }
});
