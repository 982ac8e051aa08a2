// The one place where fragstat's --require hooks (hook.ts, profile-hook.ts) listen for the signals
// that end a process. Each hook used to add its own listener and count every other listener as
// the application's, so with two hooks loaded (run --profile) each saw the other and neither let
// SIGTERM or SIGINT end the process. Here fragstat has one listener per signal, kept on `process`
// under a symbol so that every copy of this module (two hooks, two fragstat installs) shares it:
// only listeners that are not fragstat's count as the application's handler.
//
// What the hooks register runs once, in the order registered: at 'exit', or before a signal that
// the application does not handle ends the process (after which the signal is raised again with
// its default action, so the process ends by it as it would have without fragstat).
import { readFileSync } from 'node:fs';

export type EndSignal = 'SIGINT' | 'SIGTERM' | 'SIGHUP';
export const endSignals: readonly EndSignal[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** Why the process ends: 'exit', or the signal that ends it. */
export type EndReason = 'exit' | EndSignal;

export interface HookSignals {
  /** Work to do once before the process ends (final sample, report lines, profile dump). */
  atEnd(fn: (reason: EndReason) => void): void;
  /** Told of every end signal the process receives, whether or not the application handles it. */
  onSignal(fn: (signal: EndSignal) => void): void;
  /** True once the process that runs `fragstat run` is known to be gone. */
  readonly orphaned: boolean;
  /**
   * Ends the process as SIGTERM would (the application's handler if it has one, else fragstat's
   * final work and the default action) once `chain` is broken: see watchAncestry.
   */
  endWhenGone(chain: number[], everyMs?: number): void;
  /** The CLI is gone: end the process as SIGTERM would (once). */
  cliGone(): void;
}

const key = Symbol.for('fragstat.run.hook-signals');

export function hookSignals(): HookSignals {
  const holder = process as unknown as Record<symbol, HookSignals | undefined>;
  return (holder[key] ??= create());
}

function create(): HookSignals {
  const tasks: ((reason: EndReason) => void)[] = [];
  const watchers: ((signal: EndSignal) => void)[] = [];
  let ended = false;
  let orphaned = false;
  const runAll = (reason: EndReason) => {
    if (ended) return;
    ended = true;
    for (const t of tasks) {
      try {
        t(reason);
      } catch {
        // one hook's failure leaves the others' final work to do
      }
    }
  };
  process.on('exit', () => runAll('exit'));
  const cliGone = () => {
    if (orphaned || ended) return;
    orphaned = true;
    process.kill(process.pid, 'SIGTERM');
  };
  for (const signal of endSignals) {
    const listener = () => {
      for (const w of watchers) {
        try {
          w(signal);
        } catch {
          // a watcher's failure changes nothing
        }
      }
      // The application handles it: it ends through 'exit' when it is done, or not at all.
      if (process.listeners(signal).some((l) => l !== listener)) return;
      runAll(signal);
      process.off(signal, listener);
      process.kill(process.pid, signal); // the default action: end the process by this signal
    };
    process.on(signal, listener);
  }
  return {
    atEnd: (fn) => void tasks.push(fn),
    onSignal: (fn) => void watchers.push(fn),
    get orphaned() {
      return orphaned;
    },
    endWhenGone(chain, everyMs = 1000) {
      const stop = watchAncestry(chain, everyMs, cliGone);
      process.once('exit', stop);
    },
    cliGone,
  };
}

/** The parent of `pid` (from /proc), or null when it is gone or cannot be read. */
export function parentOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // pid (comm) state ppid ...: comm may hold spaces and parentheses, so read after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    return Number.isInteger(ppid) ? ppid : null;
  } catch {
    return null;
  }
}

/** The command line of `pid`, or null. */
export function commandOf(pid: number): string[] | null {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
  } catch {
    return null;
  }
}

/**
 * The ancestors of this process from its parent up to and including `target`, at most `depth` of
 * them, or null when `target` is not among them.
 */
export function ancestryTo(target: number, depth = 4): number[] | null {
  const chain: number[] = [];
  let pid = process.ppid;
  while (chain.length < depth && pid > 0) {
    chain.push(pid);
    if (pid === target) return chain;
    const next = parentOf(pid);
    if (next === null) return null;
    pid = next;
  }
  return null;
}

/**
 * Calls `gone` (once) when a link of `chain` breaks: this process's parent is no longer chain[0],
 * or chain[i]'s parent no longer chain[i + 1] (it ended, and its child was re-parented, as Linux
 * does to an orphan). Polls on an unref'd timer; returns a function that stops it.
 */
export function watchAncestry(chain: number[], everyMs: number, gone: () => void): () => void {
  const intact = () => {
    if (chain.length === 0) return true;
    if (process.ppid !== chain[0]) return false;
    for (let i = 0; i + 1 < chain.length; i++) if (parentOf(chain[i]) !== chain[i + 1]) return false;
    return true;
  };
  const timer = setInterval(() => {
    if (intact()) return;
    clearInterval(timer);
    gone();
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
