// An operator's trigger: trim when a signal arrives (as `jcmd <pid> System.trim_native_heap`
// does for the JVM). Never installed unless the application asks for it.
import { constants } from 'node:os';
import { isMainThread } from 'node:worker_threads';
import { trim } from '../read/core';
import { checkKeys, checkOptions, describe } from '../base/validate';
import type { TrimResult } from '../base/types';

export interface TrimOnSignalOptions {
  /** The signal to trim on. Default 'SIGUSR2'. */
  signal?: NodeJS.Signals;
  /** Called with each trim's result. */
  onTrim?: (result: TrimResult) => void;
  /** Called when a trim fails (an Error with code ERR_FRAGSTAT_*). Default: the log line says so. */
  onError?: (error: Error) => void;
  /** true (default): one line per trim on stderr; false: none; a function: receives the line instead. */
  log?: boolean | ((line: string) => void);
}

// Signals a listener must not take: Node or the kernel owns them, or a listener would silently
// replace the default action a service relies on.
const RESERVED: Record<string, string> = {
  SIGUSR1: "Node's inspector starts on SIGUSR1",
  SIGKILL: 'SIGKILL cannot be caught',
  SIGSTOP: 'SIGSTOP cannot be caught',
  SIGSEGV: 'Node cannot handle SIGSEGV in JavaScript',
  SIGBUS: 'Node cannot handle SIGBUS in JavaScript',
  SIGFPE: 'Node cannot handle SIGFPE in JavaScript',
  SIGILL: 'Node cannot handle SIGILL in JavaScript',
  SIGABRT: 'SIGABRT is how a failed assertion ends the process',
  SIGPROF: "V8's CPU profiler uses SIGPROF",
  SIGCHLD: 'libuv uses SIGCHLD to reap child processes',
  SIGPIPE: 'Node ignores SIGPIPE so that writes to closed sockets fail with EPIPE',
  SIGINT: 'a listener would stop SIGINT from ending the process',
  SIGTERM: 'a listener would stop SIGTERM from ending the process',
  SIGQUIT: 'a listener would stop SIGQUIT from ending the process',
};

const MiB = 1024 * 1024;
const mib = (bytes: number | null): string => (bytes === null ? '?' : (bytes / MiB).toFixed(1));

function line(signal: string, r: TrimResult): string {
  if (!r.supported) return `fragstat: ${signal}: ${r.allocator} cannot trim`;
  return (
    `fragstat: ${signal}: trim released ${mib(r.releasedBytes)} MiB ` +
    `(RSS ${mib(r.rssBeforeBytes)} -> ${mib(r.rssAfterBytes)} MiB) in ${r.durationMs?.toFixed(1) ?? '?'} ms`
  );
}

/**
 * Trims (on a libuv pool thread, as trim() does) each time `signal` arrives, and logs or hands
 * over the TrimResult. A signal that arrives while a trim runs is folded into it. Returns a
 * function that removes the listener (the signal's default action returns with it).
 * @throws TypeError for bad options; RangeError (code ERR_FRAGSTAT_SIGNAL_RESERVED) for a signal
 * Node or the process needs (SIGUSR1 is the inspector's); Error (code
 * ERR_FRAGSTAT_SIGNAL_IN_WORKER) in a worker thread, where signals are not delivered.
 */
export function trimOnSignal(options?: TrimOnSignalOptions): () => void {
  const o = checkOptions('trimOnSignal(options)', options);
  checkKeys('trimOnSignal(options)', o, ['signal', 'onTrim', 'onError', 'log']);
  const signal = o.signal ?? 'SIGUSR2';
  if (typeof signal !== 'string' || !(signal in constants.signals)) {
    throw new TypeError(
      `Expected a signal name such as "SIGUSR2" for options.signal but received ${describe(signal)}`,
    );
  }
  if (RESERVED[signal]) {
    throw Object.assign(
      new RangeError(
        `Expected a signal Node does not reserve for options.signal but received "${signal}": ${RESERVED[signal]}`,
      ),
      { code: 'ERR_FRAGSTAT_SIGNAL_RESERVED' },
    );
  }
  for (const key of ['onTrim', 'onError'] as const) {
    if (o[key] !== undefined && typeof o[key] !== 'function') {
      throw new TypeError(`Expected a function for options.${key} but received ${describe(o[key])}`);
    }
  }
  if (o.log !== undefined && typeof o.log !== 'boolean' && typeof o.log !== 'function') {
    throw new TypeError(`Expected a boolean or a function for options.log but received ${describe(o.log)}`);
  }
  if (!isMainThread) {
    throw Object.assign(
      new Error('trimOnSignal() works on the main thread only: worker threads receive no signals'),
      {
        code: 'ERR_FRAGSTAT_SIGNAL_IN_WORKER',
      },
    );
  }
  const onTrim = o.onTrim as TrimOnSignalOptions['onTrim'];
  const onError = o.onError as TrimOnSignalOptions['onError'];
  const log =
    o.log === false
      ? null
      : typeof o.log === 'function'
        ? (o.log as (line: string) => void)
        : (text: string) => process.stderr.write(`${text}\n`);

  let running = false;
  const run = async (): Promise<void> => {
    let result: TrimResult;
    try {
      result = await trim();
    } catch (err) {
      if (onError) onError(err as Error);
      else log?.(`fragstat: ${signal}: trim failed: ${(err as Error).message}`);
      return;
    }
    log?.(line(signal, result));
    onTrim?.(result);
  };
  const listener = (): void => {
    if (running) return;
    running = true;
    // A throwing callback must not become an unhandled rejection that ends the process.
    run()
      .catch((err: Error) => log?.(`fragstat: ${signal}: callback failed: ${err.message}`))
      .finally(() => {
        running = false;
      });
  };
  process.on(signal as NodeJS.Signals, listener);
  let disposed = false;
  return () => {
    if (disposed) return;
    disposed = true;
    process.off(signal as NodeJS.Signals, listener);
  };
}
