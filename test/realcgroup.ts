// A real memory cgroup for tests, made as root under the memory controller this process is in
// (v1: below its own memory cgroup; v2: below the mount's top cgroup, which may have children
// with the memory controller), and child Node processes moved into it, driven over IPC.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { cgroupMemory } from '../src/read/cgroup';
import { nodeCommand, root } from './helpers';

const read = (file: string): string | null => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
};

/** Where a test cgroup can be made, or why not (the reason a skipped test prints). */
function findParent(): { dir: string; version: 1 | 2 } | { reason: string } {
  if (process.getuid?.() !== 0) return { reason: 'not root: cannot make a cgroup' };
  const own = cgroupMemory();
  if (own === null) return { reason: 'no memory cgroup controller mounted' };
  let dir = own.directory;
  if (own.version === 2) {
    // v2's "no internal processes" rule: a cgroup with processes cannot give its children the
    // memory controller, so the children go under the top of the mount, which is exempt.
    const mount = cgroupMemory({ path: '/' });
    dir = mount?.directory ?? dir;
    if (!(read(path.join(dir, 'cgroup.subtree_control')) ?? '').split(/\s+/).includes('memory')) {
      return { reason: `cgroup v2: ${dir} does not give its children the memory controller` };
    }
  }
  const probe = path.join(dir, `fragstat-probe-${process.pid}`);
  try {
    mkdirSync(probe);
    rmdirSync(probe);
  } catch (err) {
    return { reason: `cannot make a cgroup under ${dir}: ${(err as Error).message}` };
  }
  return { dir, version: own.version };
}

const parent = findParent();
/** Why no test cgroup can be made here, or null when one can. */
export const noCgroupReason: string | null = 'reason' in parent ? parent.reason : null;
if (noCgroupReason !== null) console.warn(`skipping real cgroup tests: ${noCgroupReason}`);

/** A test cgroup: its directory, version, and how to set its limit, add a process, remove it. */
export interface TestCgroup {
  dir: string;
  version: 1 | 2;
  /** Sets the hard limit (v1 memory.limit_in_bytes, v2 memory.max), no swap beyond it. */
  setLimit(bytes: number): void;
  /** Bytes charged to the cgroup now, read from its own file. */
  usageBytes(): number;
  /** Moves a process in (cgroup.procs). */
  add(pid: number): void;
  /** Removes the cgroup; its processes must have exited. Safe to call twice. */
  remove(): void;
}

let made = 0;

/** Makes a cgroup with the memory controller and `limitBytes` as its limit. */
export function makeCgroup(limitBytes: number): TestCgroup {
  if ('reason' in parent) throw new Error(parent.reason);
  const dir = path.join(parent.dir, `fragstat-test-${process.pid}-${made++}`);
  mkdirSync(dir);
  const v1 = parent.version === 1;
  let removed = false;
  const cg: TestCgroup = {
    dir,
    version: parent.version,
    setLimit(bytes) {
      if (v1) {
        // memsw (memory + swap) may not be below the memory limit: order the writes by direction.
        const memsw = path.join(dir, 'memory.memsw.limit_in_bytes');
        const hasSwapFile = read(memsw) !== null;
        const current = Number(read(path.join(dir, 'memory.limit_in_bytes')));
        if (hasSwapFile && bytes > current) writeFileSync(memsw, String(bytes));
        writeFileSync(path.join(dir, 'memory.limit_in_bytes'), String(bytes));
        if (hasSwapFile && bytes <= current) writeFileSync(memsw, String(bytes));
      } else {
        writeFileSync(path.join(dir, 'memory.max'), String(bytes));
        if (read(path.join(dir, 'memory.swap.max')) !== null)
          writeFileSync(path.join(dir, 'memory.swap.max'), '0');
      }
    },
    usageBytes() {
      return Number(read(path.join(dir, v1 ? 'memory.usage_in_bytes' : 'memory.current')));
    },
    add(pid) {
      writeFileSync(path.join(dir, 'cgroup.procs'), String(pid));
    },
    remove() {
      if (removed) return;
      // A killed process leaves its cgroup a moment after its parent sees it exit.
      const deadline = Date.now() + 5000;
      for (;;) {
        try {
          rmdirSync(dir);
          removed = true;
          return;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
          if (Date.now() > deadline) throw err;
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
        }
      }
    },
  };
  try {
    cg.setLimit(limitBytes);
  } catch (err) {
    cg.remove();
    throw err;
  }
  return cg;
}

/** A Node child run with an IPC channel: ask it something and wait for its answer, with a deadline. */
export interface IpcChild {
  child: ChildProcess;
  /** Sends `message` and resolves with the next message of the given type. */
  ask<T>(message: object, type: string, timeoutMs?: number): Promise<T>;
  /** The next message of `type`, whatever asked for it. */
  next<T>(type: string, timeoutMs?: number): Promise<T>;
  /** Resolves when the child has exited, with its code and signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

/**
 * Starts `script` (a path under test/fixtures) with an IPC channel. Its messages are
 * `{ type, ... }` objects, queued until a test asks for them.
 */
export function startIpcChild(
  script: string,
  args: string[] = [],
  env: Record<string, string> = {},
): IpcChild {
  const child = spawn(
    nodeCommand[0],
    [...nodeCommand.slice(1), '--expose-gc', path.join(root, 'test/fixtures', script), ...args],
    { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'pipe', 'ipc'] },
  );
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const queue: { type: string }[] = [];
  const waiters: { type: string; resolve: (m: never) => void }[] = [];
  child.on('message', (m: { type: string }) => {
    const i = waiters.findIndex((w) => w.type === m.type);
    if (i >= 0) waiters.splice(i, 1)[0].resolve(m as never);
    else queue.push(m);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>(
    (resolve) => child.on('exit', (code, signal) => setImmediate(() => resolve({ code, signal, stderr }))),
  );
  const next = <T>(type: string, timeoutMs = 30_000): Promise<T> => {
    const i = queue.findIndex((m) => m.type === type);
    if (i >= 0) return Promise.resolve(queue.splice(i, 1)[0] as T);
    return new Promise<T>((resolve, reject) => {
      const w = { type, resolve: resolve as (m: never) => void };
      waiters.push(w);
      const timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(w), 1);
        reject(new Error(`no "${type}" message from ${script} within ${timeoutMs} ms\n${stderr}`));
      }, timeoutMs);
      const done = w.resolve;
      w.resolve = (m) => {
        clearTimeout(timer);
        done(m);
      };
      void exited.then((e) => {
        if (waiters.includes(w)) {
          waiters.splice(waiters.indexOf(w), 1);
          clearTimeout(timer);
          reject(
            new Error(`${script} exited (${e.code ?? e.signal}) before a "${type}" message\n${e.stderr}`),
          );
        }
      });
    });
  };
  return {
    child,
    next,
    ask: (message, type, timeoutMs) => {
      child.send(message);
      return next(type, timeoutMs);
    },
    exited,
  };
}
