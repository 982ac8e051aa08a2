// fragstat attach: reads a running Node.js process that was started without fragstat. Opens its
// inspector as Node itself does on SIGUSR1, finds the port in /proc, loads this installation of
// fragstat into it with one Runtime.evaluate, reads it, and closes the inspector again if it was
// closed. Runs in the CLI's process: it never loads the addon here.
import * as path from 'node:path';
import { existsSync } from 'node:fs';
import {
  AttachError,
  checkTarget,
  connectAddress,
  inspectorBinding,
  isLoopback,
  listeningSockets,
  namespaceListeners,
  type ListeningSocket,
} from './attach-proc';
import {
  connectInspector,
  isNodeInspector,
  listTargets,
  takeHeapSnapshot,
  type InspectorSession,
} from './inspector-client';
import { diffHolders, holdersFromSnapshot, type Holders, type HoldersDiff } from '../profile/holders';
import type { AllocatorInfo, Snapshot, TrimResult } from '../base/types';
import type { Breakdown } from '../read/breakdown';
import type { Finding } from '../diagnose/doctor';
import type { MonitorStats, Sample } from '../monitor/monitor';
import type { Verdict } from '../diagnose/verdict';
import { checkBoolean, checkKeys, checkNumber, checkOptions, describe } from '../base/validate';

export { AttachError } from './attach-proc';

/**
 * This installation's package root, which the process loads fragstat from. Checked when attaching,
 * not when this module loads: a bundle of fragstat has no package beside it.
 */
export function packageRoot(): string {
  // dist/attach/attach.js in the CommonJS build, dist/index.mjs in the ES module build.
  const root = [path.resolve(__dirname, '..', '..'), path.resolve(__dirname, '..')].find((dir) =>
    existsSync(path.join(dir, 'dist', 'index.js')),
  );
  if (root === undefined) {
    throw new AttachError(
      'NO_PACKAGE',
      'fragstat attach loads fragstat into the process from its installed package, and this copy ' +
        'runs inside a bundle: run `npx fragstat attach` from an installation instead',
    );
  }
  return root;
}

/** An open inspector of another process and a CDP session on it. */
export interface OpenInspector {
  pid: number;
  /** The address the inspector listens on ("127.0.0.1"), and its port. */
  address: string;
  port: number;
  /** Whether the inspector was open before fragstat came (then it is left open). */
  wasOpen: boolean;
  session: InspectorSession;
  /** When the inspector was found open, ms since the epoch. */
  openedAt: number;
  /**
   * Ends the session and, when the inspector was closed before, closes it in the process and
   * waits until its port stops listening. Resolves to whether the inspector is as it was found.
   */
  close(): Promise<boolean>;
}

/** A pid: an integer from 1 to 2^22 (Linux's pid_max ceiling). */
function checkPid(pid: unknown): void {
  if (typeof pid !== 'number') throw new TypeError(`Expected a number for pid but received ${describe(pid)}`);
  checkNumber('pid', pid, 0, 1, 2 ** 22, true);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The first of `sockets` that answers as a Node.js inspector, or null. */
async function findInspector(sockets: ListeningSocket[], timeoutMs: number): Promise<ListeningSocket | null> {
  const answers = await Promise.all(
    sockets.map((s) => isNodeInspector(connectAddress(s.address), s.port, timeoutMs)),
  );
  const i = answers.indexOf(true);
  return i < 0 ? null : sockets[i];
}

/**
 * Opens `pid`'s inspector (or finds it open) and connects a CDP session to it. Throws an
 * AttachError naming the cause and the remedy when the process cannot be reached.
 * @param options.timeoutMs how long to wait for the inspector to listen after SIGUSR1 (default 5000)
 */
export async function openInspector(
  pid: number,
  options: { timeoutMs?: number } = {},
): Promise<OpenInspector> {
  checkPid(pid);
  const timeoutMs = options.timeoutMs ?? 5000;
  checkTarget(pid);
  const before = listeningSockets(pid);
  // An inspector already open (--inspect, inspector.open(), an earlier SIGUSR1): use it as it is.
  let socket = await findInspector(before, 1000);
  const wasOpen = socket !== null;
  if (!socket) {
    const binding = inspectorBinding(pid);
    if (!isLoopback(binding.host)) {
      throw new AttachError(
        'EXPOSED',
        `process ${pid} would open its inspector on ${binding.host}:${binding.port} (${binding.from}), ` +
          'reachable from other machines, and whoever reaches it can run any code in the process: ' +
          'fragstat did not open it. Restart the process with --inspect-port=127.0.0.1:0 to attach safely',
      );
    }
    const known = new Set(before.map((s) => s.inode));
    // Node's own way of opening another process's inspector (process._debugProcess sends the same).
    process.kill(pid, 'SIGUSR1');
    const deadline = Date.now() + timeoutMs;
    while (!socket && Date.now() < deadline) {
      await sleep(25);
      let fresh: ListeningSocket[];
      try {
        fresh = listeningSockets(pid).filter((s) => !known.has(s.inode));
      } catch {
        throw new AttachError('NO_PROCESS', `process ${pid} ended while its inspector was being opened`);
      }
      if (fresh.length) socket = await findInspector(fresh, 1000);
      // A listener the application opened meanwhile is not the inspector: do not ask it again.
      if (!socket) for (const s of fresh) known.add(s.inode);
    }
    if (!socket) {
      const taken =
        binding.port !== 0 && namespaceListeners(pid).some((s) => s.port === binding.port)
          ? `port ${binding.port} is taken by another listener, so the process could not open its ` +
            'inspector there (it printed "address already in use" on its own stderr); '
          : '';
      throw new AttachError(
        'NO_INSPECTOR',
        `process ${pid} opened no inspector within ${timeoutMs} ms of SIGUSR1: ${taken}` +
          `${taken ? 'or ' : ''}the application handles SIGUSR1 itself (process.on('SIGUSR1') replaces ` +
          "Node's handler), or a policy disables the inspector. " +
          `${taken ? '' : `If port ${binding.port} is taken by another listener the process could not bind it (it says so on its own stderr). `}` +
          'Remedy: restart it with --inspect-port=0 (any free port; NODE_OPTIONS=--inspect-port=0 works ' +
          'too) and without a SIGUSR1 handler',
      );
    }
  }
  const address = connectAddress(socket.address);
  let session: InspectorSession | null = null;
  let failure: Error | null = null;
  // Twice: an inspector that fragstat opened must be reached again to be closed.
  for (let attempt = 0; attempt < 2 && !session; attempt++) {
    try {
      const targets = await listTargets(address, socket.port);
      if (!targets.length) throw new Error('it lists no target');
      session = await connectInspector(
        targets[0].webSocketDebuggerUrl.replace('ws://0.0.0.0:', `ws://${address}:`),
      );
    } catch (err) {
      failure = err as Error;
      await sleep(200);
    }
  }
  if (!session) {
    throw new AttachError(
      'NO_INSPECTOR',
      `cannot connect to the inspector of process ${pid} on ${address}:${socket.port}: ${failure?.message}` +
        (wasOpen ? '' : '. fragstat opened it and could not close it: it stays open until the process ends'),
    );
  }
  const connected: InspectorSession = session;
  const openedAt = Date.now();
  const inode = socket.inode;
  const port = socket.port;
  const warnings = isLoopback(socket.address)
    ? null
    : `the inspector of process ${pid} listens on ${socket.address}:${port}, beyond this machine`;
  if (warnings) process.emitWarning(warnings);
  return {
    pid,
    address,
    port,
    wasOpen,
    session: connected,
    openedAt,
    async close(): Promise<boolean> {
      if (wasOpen) {
        await connected.close();
        return true;
      }
      // inspector.close() run inside the session's own message would close the connection under
      // it: schedule it, leave, and watch the port go.
      try {
        await evaluate(
          connected,
          `(() => { const i = ${loaderSource()}('node:inspector'); setTimeout(() => i.close(), 10); return 'ok'; })()`,
        );
      } catch {
        // the session broke: the port check below says how the inspector stands
      }
      await connected.close();
      const deadline = Date.now() + 5000;
      for (;;) {
        let open: boolean;
        try {
          open = listeningSockets(pid).some((s) => s.inode === inode);
        } catch {
          return true; // the process is gone
        }
        if (!open) return true;
        if (Date.now() > deadline) return false;
        await sleep(20);
      }
    },
  };
}

// How the target loads a module by absolute path: the inspector's command-line API has `require`
// (Node installs it for CommonJS and ESM alike); else process.getBuiltinModule (Node 22.3+); else
// the main module's require (CommonJS).
const loaderSource = () => `((id) => {
  if (typeof require === 'function') return require(id);
  if (typeof process.getBuiltinModule === 'function')
    return process.getBuiltinModule('node:module').createRequire(${JSON.stringify(packageRoot() + '/')})(id);
  if (process.mainModule) return process.mainModule.require(id);
  throw new Error('no require in this process: cannot load ' + id);
})`;

// How long one evaluation in the process may take (a reading takes milliseconds; a blocked event
// loop never answers).
const EVALUATE_TIMEOUT_MS = 30_000;

/** Runs `expression` in the session's process (awaiting a promise) and returns its value. */
async function evaluate(session: InspectorSession, expression: string): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new AttachError(
            'EVALUATE',
            `the process did not answer within ${EVALUATE_TIMEOUT_MS / 1000} s: is its event loop blocked?`,
          ),
        ),
      EVALUATE_TIMEOUT_MS,
    );
  });
  const r = await Promise.race([
    session.send<{
      result: { value?: unknown };
      exceptionDetails?: { text?: string; exception?: { description?: string } };
    }>('Runtime.evaluate', {
      expression,
      includeCommandLineAPI: true,
      awaitPromise: true,
      returnByValue: true,
      silent: true,
    }),
    late,
  ]).finally(() => clearTimeout(timer));
  if (r.exceptionDetails) {
    const d = r.exceptionDetails;
    throw new AttachError(
      'EVALUATE',
      `in the process: ${d.exception?.description ?? d.text ?? 'an exception'}`,
    );
  }
  return r.result.value;
}

/** What fragstat read in the process. */
export interface AttachReading {
  pid: number;
  nodeVersion: string;
  argv: string[];
  uptimeMs: number;
  allocator: AllocatorInfo;
  snapshot: Snapshot;
  breakdown: Breakdown;
  findings: Finding[];
}

/** What `trim` did in the process: two trims a little over a second apart (see attach()). */
export interface AttachTrim {
  /** RSS before the first trim and after the second, bytes. */
  rssBeforeBytes: number | null;
  rssAfterBytes: number | null;
  /** rssBeforeBytes - rssAfterBytes. */
  releasedBytes: number | null;
  /** The two trims as trim() reported them. */
  trims: TrimResult[];
}

/** What a watch collected: the monitor's samples, its verdict and its statistics. */
export interface AttachWatch {
  /** How long the monitor ran, ms. */
  durationMs: number;
  intervalMs: number;
  samples: Sample[];
  verdict: Verdict;
  stats: MonitorStats;
  /** The doctor on the last sample, with the monitor's peaks. */
  findings: Finding[];
  /** A breakdown taken when the watch ended. */
  breakdown: Breakdown;
  /** The reading taken when the watch ended (as `reading` is at its start). */
  end: AttachReading;
}

/** What attach() returns. */
export interface AttachResult {
  pid: number;
  inspector: {
    address: string;
    port: number;
    wasOpen: boolean;
    /** Whether the inspector was left as it was found (closed again if it was closed). */
    restored: boolean;
    /** How long the inspector stood open for fragstat, ms (both windows with a watch). */
    openMs: number;
  };
  reading: AttachReading;
  watch: AttachWatch | null;
  trim: AttachTrim | null;
  /**
   * With options.holders: the native memory JS objects keep alive, from a heap snapshot of the
   * process parsed here (never in the process); with a watch, one at its start and one at its
   * end, and what grew between them.
   */
  holders: AttachHolders | null;
}

/** What attach() found holding native memory (options.holders). */
export interface AttachHolders {
  /** At the start of the watch; null without one. */
  before: Holders | null;
  /** At the end (or at the only reading). */
  after: Holders;
  /** after - before; null without a watch. */
  diff: HoldersDiff | null;
  /** How long each snapshot took to take and read here, ms (the process stands still while V8 writes it). */
  snapshotMs: number[];
  /**
   * What the trim after each snapshot gave back, bytes (RSS before - after). V8 builds a snapshot
   * with malloc and what it frees stays in the allocator: attach trims once after each, which
   * releases the process's other free memory too. Null where the allocator cannot trim.
   */
  settledBytes: (number | null)[];
}

/** Options of attach(). */
export interface AttachOptions {
  /** How long to wait for the inspector after SIGUSR1, ms (default 5000). */
  timeoutMs?: number;
  /** Run a monitor in the process for this long with the inspector closed, then collect it (ms; 0: none). */
  watchMs?: number;
  /** The watch's sampling interval, ms (default 1000). */
  intervalMs?: number;
  /** Trim in the process at the end and report what came back. */
  trim?: boolean;
  /** Called with a line of progress ("inspector open on 127.0.0.1:9229"). */
  onProgress?: (message: string) => void;
  /** Ends a watch early when aborted: the monitor is collected and stopped at once. */
  signal?: AbortSignal;
  /**
   * Take a heap snapshot of the process (two with a watch) and say which JS objects keep its
   * native memory alive (see holders()). The process stops while V8 writes a snapshot: about
   * 100 s per GiB of V8 heap measured here (docs/ATTACH.md). Default false.
   */
  holders?: boolean;
}

const KEY = 'fragstat.attach';
// The most samples a watch keeps (the oldest go first): a day at one a second.
const MAX_WATCH_SAMPLES = 86_400;

// The function the process runs, as source. It reads what `ops` ask in this order: stop a
// watch's monitor and collect it, read the figures, trim twice (a first trim only notes glibc's
// thread arenas; one seen a second earlier has its free top released by the next), trim once
// after a heap snapshot (settle), start a monitor. It returns JSON text.
const targetSource = `async (load, root, ops) => {
  const f = load(root);
  const state = (globalThis[Symbol.for(${JSON.stringify(KEY)})] ??= {});
  const out = {};
  if (ops.collect) {
    const m = state.monitor;
    if (!m) throw new Error('the watch\\'s monitor is gone from the process (did it restart?)');
    const samples = m.history();
    const stats = m.stats();
    const latest = m.latest();
    out.watch = {
      durationMs: Date.now() - state.startedAt,
      intervalMs: m.intervalMs,
      samples,
      verdict: m.verdict(),
      stats,
      findings: latest ? f.doctor(latest, { stats }) : [],
    };
    m.stop();
    clearTimeout(state.expiry);
    delete state.monitor;
  }
  if (ops.read) {
    // Side by side on the pool: on a busy event loop every await waits its turn.
    const [{ snapshot, anonymousRssBytes }, breakdown] = await Promise.all([
      f.snapshotAsync({ residentFree: true }).then((snapshot) => ({ snapshot, anonymousRssBytes: f.anonymousRssBytes() })),
      f.breakdownAsync(),
    ]);
    out.reading = {
      pid: process.pid,
      nodeVersion: process.version,
      argv: process.argv,
      uptimeMs: Math.round(process.uptime() * 1000),
      allocator: f.allocator(),
      snapshot,
      breakdown,
      findings: f.doctor(snapshot, { anonymousRssBytes }),
    };
    if (out.watch) out.watch.breakdown = breakdown;
  }
  if (ops.trim) {
    const first = await f.trim();
    await new Promise((r) => setTimeout(r, 1100));
    const second = await f.trim();
    const before = first.rssBeforeBytes, after = second.rssAfterBytes;
    out.trim = {
      rssBeforeBytes: before,
      rssAfterBytes: after,
      releasedBytes: before !== null && after !== null ? before - after : null,
      trims: [first, second],
    };
  }
  if (ops.settle) {
    const t = await f.trim();
    out.settle = { releasedBytes: t.releasedBytes };
  }
  if (ops.monitor) {
    if (state.monitor) state.monitor.stop();
    const m = f.monitor({ intervalMs: ops.monitor.intervalMs, historySize: ops.monitor.historySize });
    state.monitor = m;
    state.startedAt = Date.now();
    // Nothing is left running if fragstat never comes back for it.
    state.expiry = setTimeout(() => { m.stop(); if (state.monitor === m) delete state.monitor; }, ops.monitor.expiresMs);
    state.expiry.unref();
  }
  return JSON.stringify(out);
}`;

/** Runs the ops in the process through an open inspector. */
async function runInTarget(
  session: InspectorSession,
  ops: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const text = await evaluate(
    session,
    `(${targetSource})(${loaderSource()}, ${JSON.stringify(packageRoot())}, ${JSON.stringify(ops)})`,
  );
  if (typeof text !== 'string') throw new AttachError('EVALUATE', 'the process answered no JSON');
  return JSON.parse(text) as Record<string, unknown>;
}

/**
 * Attaches to a running Node.js process `pid` (started without fragstat), loads this installation
 * of fragstat into it and reads its breakdown, snapshot, allocator and the doctor's findings; with
 * `watchMs`, runs a monitor in it with the inspector closed and collects the verdict; with `trim`,
 * trims it. The inspector is closed again if it was closed. The addon stays loaded in the process.
 * @throws AttachError (code ERR_FRAGSTAT_ATTACH_*) saying why and what to do
 */
export async function attach(pid: number, options?: AttachOptions): Promise<AttachResult> {
  const o = checkOptions('attach(pid, options)', options);
  checkKeys('attach(pid, options)', o, [
    'timeoutMs',
    'watchMs',
    'intervalMs',
    'trim',
    'onProgress',
    'signal',
    'holders',
  ]);
  checkPid(pid);
  const timeoutMs = checkNumber('options.timeoutMs', o.timeoutMs, 5000, 100, 600_000);
  const watchMs = checkNumber('options.watchMs', o.watchMs, 0, 0, 2 ** 31 - 1);
  const intervalMs = checkNumber('options.intervalMs', o.intervalMs, 1000, 10, 2 ** 31 - 1);
  const trim = checkBoolean('options.trim', o.trim, false);
  const withHolders = checkBoolean('options.holders', o.holders, false);
  const snapshotMs: number[] = [];
  const settledBytes: (number | null)[] = [];
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') {
    throw new TypeError('Expected a function or undefined for options.onProgress');
  }
  const say = (o.onProgress as ((m: string) => void) | undefined) ?? (() => {});
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) {
    throw new TypeError(
      `Expected an AbortSignal or undefined for options.signal but received ${describe(o.signal)}`,
    );
  }
  const signal = o.signal as AbortSignal | undefined;

  let openMs = 0;
  const window = async (ops: Record<string, unknown>, takeHolders = false) => {
    const inspector = await openInspector(pid, { timeoutMs });
    say(
      `inspector ${inspector.wasOpen ? 'already open' : 'opened'} on ${inspector.address}:${inspector.port}`,
    );
    let out: Record<string, unknown>;
    try {
      // With a snapshot, the monitor starts after it (and after the trim that follows it).
      const { monitor, ...beforeSnapshot } = ops;
      out = await runInTarget(inspector.session, takeHolders ? beforeSnapshot : ops);
      if (takeHolders) {
        say('taking a heap snapshot (the process stops while V8 writes it)');
        const started = Date.now();
        out.holders = await holdersFromSnapshot(takeHeapSnapshot(inspector.session));
        snapshotMs.push(Date.now() - started);
        say(`heap snapshot read in ${((Date.now() - started) / 1000).toFixed(1)} s`);
        // V8 builds a snapshot with malloc, and what it frees stays in the allocator (tens of MiB
        // for a small heap): a watch would count it as the process's own free memory. One trim
        // gives it back before anything else is measured, as holders() does in-process.
        const settled = await runInTarget(inspector.session, {
          settle: true,
          ...(monitor ? { monitor } : {}),
        });
        const released = (settled.settle as { releasedBytes: number | null }).releasedBytes;
        settledBytes.push(released);
        if (released !== null && released > 0) {
          say(`gave back ${(released / 2 ** 20).toFixed(1)} MiB after the snapshot (one trim)`);
        }
      }
    } finally {
      const restored = await inspector.close();
      openMs += Date.now() - inspector.openedAt;
      say(
        inspector.wasOpen
          ? 'left the inspector open, as it was'
          : restored
            ? 'closed the inspector again'
            : 'the inspector did not close',
      );
      // As fragstat found it before its first window, and restored after every one.
      if (!seen)
        seen = { address: inspector.address, port: inspector.port, wasOpen: inspector.wasOpen, restored };
      else
        seen = {
          ...seen,
          address: inspector.address,
          port: inspector.port,
          restored: seen.restored && restored,
        };
    }
    return out;
  };
  let seen: { address: string; port: number; wasOpen: boolean; restored: boolean } | null = null;

  if (watchMs === 0) {
    const out = await window({ read: true, trim }, withHolders);
    return {
      pid,
      inspector: { ...seen!, openMs },
      reading: out.reading as AttachReading,
      watch: null,
      trim: (out.trim as AttachTrim | undefined) ?? null,
      holders: withHolders
        ? { before: null, after: out.holders as Holders, diff: null, snapshotMs, settledBytes }
        : null,
    };
  }
  const first = await window(
    {
      read: true,
      monitor: {
        intervalMs,
        historySize: Math.min(Math.ceil(watchMs / intervalMs) + 16, MAX_WATCH_SAMPLES),
        expiresMs: Math.min(watchMs * 2 + 60_000, 2 ** 31 - 1),
      },
    },
    withHolders,
  );
  say(`watching for ${(watchMs / 1000).toFixed(0)} s with the inspector closed`);
  // The watch: the inspector stays closed until it ends (or `signal` ends it early).
  await new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, watchMs);
    if (signal?.aborted) done();
    else signal?.addEventListener('abort', done);
  });
  if (signal?.aborted) say('watch ended early: collecting it now');
  const last = await window({ collect: true, read: true, trim }, withHolders);
  return {
    pid,
    inspector: { ...seen!, openMs },
    reading: first.reading as AttachReading,
    watch: { ...(last.watch as Omit<AttachWatch, 'end'>), end: last.reading as AttachReading },
    trim: (last.trim as AttachTrim | undefined) ?? null,
    holders: withHolders
      ? {
          before: first.holders as Holders,
          after: last.holders as Holders,
          diff: diffHolders(first.holders as Holders, last.holders as Holders),
          snapshotMs,
          settledBytes,
        }
      : null,
  };
}
