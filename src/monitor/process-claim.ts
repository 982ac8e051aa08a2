// One monitor per process: a `-r` preload runs in every worker thread too, and each thread has
// its own copy of fragstat's JavaScript state, so only the addon (one per process) can tell a
// worker's monitor that another thread already runs one. Process-wide actions (auto-trim, V8
// release, capture) belong to the first; a later one in another thread only reads, and says so.
import { threadId } from 'node:worker_threads';
import { binding } from '../binding';

/** The thread whose monitor owns the process-wide actions, when it is not this one. */
export interface MonitorElsewhere {
  /** worker_threads' threadId of the thread holding the claim (0: the main thread). */
  threadId: number;
}

let warned = false;

/** Claims the process for a monitor of this thread: null when granted, else who holds it. */
export function claimProcess(): MonitorElsewhere | null {
  const holder = binding.claimMonitor(threadId);
  if (holder === -1) return null;
  if (!warned) {
    warned = true;
    process.emitWarning(
      `a fragstat monitor already runs in ${holder === 0 ? 'the main thread' : `worker thread ${holder}`} of this process; ` +
        `this one, in ${threadId === 0 ? 'the main thread' : `worker thread ${threadId}`}, reads the same process-wide figures ` +
        'and leaves auto-trim and capture to that one. A -r preload runs in every worker thread: ' +
        "start the monitor only where require('node:worker_threads').isMainThread is true.",
      { code: 'FRAGSTAT_MONITOR_ELSEWHERE' },
    );
  }
  return { threadId: holder };
}

/** Gives this thread's claim back (a monitor that was granted it stops). */
export function releaseProcess(): void {
  binding.releaseMonitor(threadId);
}
