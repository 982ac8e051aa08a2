// V8's idle heap: after a burst, V8 keeps the pages its heap grew into (new space at its largest,
// old-space pages half empty) until its memory reducer happens to act, and no malloc_trim reaches
// them (V8 maps its pages itself). This room asks V8 for them on the calling JS thread.
import * as v8 from 'node:v8';
import { binding, type V8ReleaseMethod } from '../binding';
import { checkKeys, checkOptions, describe } from '../base/validate';

/** How V8 is asked for its free pages. */
export type V8ReleaseMethodName = 'memory-pressure' | 'low-memory';

export interface ReleaseV8HeapOptions {
  /**
   * 'memory-pressure' (default): v8::Isolate::MemoryPressureNotification(kCritical), one full GC
   * that compacts and shrinks the heap, a second only when V8 finds it cheap and worth it.
   * 'low-memory': node::LowMemoryNotification(), full GCs until nothing more dies: a little more
   * back for about twice the pause (docs/CURES.md has both measured).
   */
  method?: V8ReleaseMethodName;
}

/** What one release of V8's free heap pages did. */
export interface V8ReleaseResult {
  /** False when this runtime does not export what the method needs: nothing was done. */
  supported: boolean;
  method: V8ReleaseMethodName;
  /** V8's heap in RAM (v8.getHeapStatistics().total_physical_size) before and after, bytes. */
  heapBeforeBytes: number;
  heapAfterBytes: number;
  /** heapBeforeBytes - heapAfterBytes: V8's own pages given back, bytes (may be negative). */
  releasedBytes: number;
  /** Live objects in V8's heap before and after (used_heap_size), bytes. */
  usedBeforeBytes: number;
  usedAfterBytes: number;
  /** The process's RSS before and after, bytes. */
  rssBeforeBytes: number;
  rssAfterBytes: number;
  /** How long the calling thread was held, ms: the whole GC pause, on the JS thread. */
  pauseMs: number;
  /** Date.now() when the release began. */
  timestamp: number;
}

const CODES: Record<V8ReleaseMethodName, V8ReleaseMethod> = { 'memory-pressure': 0, 'low-memory': 1 };

/** V8 releases done in this thread (by the application or a monitor). */
export interface V8ReleaseLog {
  /** Releases that ran (supported ones only). */
  count: number;
  /** Sum of their positive releasedBytes: a monotonic counter. */
  releasedBytesTotal: number;
  /** Sum of their pauses, seconds. */
  pauseSecondsTotal: number;
  /** The most recent release, or null. */
  last: V8ReleaseResult | null;
}

// Kept on the addon's exports, as the trim log is: every evaluation of this module (the CommonJS
// and the ES module build) counts the same releases.
const shared = binding as typeof binding & { v8ReleaseLog?: V8ReleaseLog };
const log: V8ReleaseLog = (shared.v8ReleaseLog ??= {
  count: 0,
  releasedBytesTotal: 0,
  pauseSecondsTotal: 0,
  last: null,
});

/** What V8 releases have done in this thread so far (a copy). */
export function v8ReleaseLog(): V8ReleaseLog {
  return { ...log, last: log.last && { ...log.last } };
}

/** Reads the method option; TypeError for anything else. */
export function readV8ReleaseMethod(where: string, value: unknown): V8ReleaseMethodName {
  if (value === undefined) return 'memory-pressure';
  if (value !== 'memory-pressure' && value !== 'low-memory') {
    throw new TypeError(
      `Expected 'memory-pressure' or 'low-memory' for ${where} but received ${describe(value)}`,
    );
  }
  return value;
}

/** Whether V8 can be asked for its free pages in this runtime (Node 18 and later export what it needs). */
export function canReleaseV8Heap(method: V8ReleaseMethodName = 'memory-pressure'): boolean {
  return binding.v8ReleaseAvailable(CODES[readV8ReleaseMethod('method', method)]);
}

/**
 * Asks this thread's V8 heap to give its free pages back to the system, now, on this thread: a
 * full garbage collection that compacts and shrinks the heap. It holds the JS thread for the whole
 * pause (about 10-30 ms for a heap of tens of MiB, more in proportion to the live objects), so
 * call it when the process is idle: monitor({ autoTrim: true }) does, when the process goes quiet
 * after a burst. Memory that dies in this GC and was malloc'ed (Buffers' backing stores, zlib
 * streams) goes back to malloc, not to the system: trim() after it. In a worker thread it acts on
 * that worker's heap only.
 */
export function releaseV8Heap(options?: ReleaseV8HeapOptions): V8ReleaseResult {
  const o = checkOptions('options', options);
  checkKeys('options', o, ['method']);
  const method = readV8ReleaseMethod('options.method', o.method);
  const timestamp = Date.now();
  const before = v8.getHeapStatistics();
  const rssBeforeBytes = process.memoryUsage.rss();
  const t0 = performance.now();
  const supported = binding.releaseV8Heap(CODES[method]);
  const pauseMs = performance.now() - t0;
  const after = supported ? v8.getHeapStatistics() : before;
  const result: V8ReleaseResult = {
    supported,
    method,
    heapBeforeBytes: before.total_physical_size,
    heapAfterBytes: after.total_physical_size,
    releasedBytes: before.total_physical_size - after.total_physical_size,
    usedBeforeBytes: before.used_heap_size,
    usedAfterBytes: after.used_heap_size,
    rssBeforeBytes,
    rssAfterBytes: supported ? process.memoryUsage.rss() : rssBeforeBytes,
    pauseMs,
    timestamp,
  };
  if (supported) {
    log.count++;
    log.releasedBytesTotal += Math.max(0, result.releasedBytes);
    log.pauseSecondsTotal += pauseMs / 1000;
    log.last = result;
  }
  return result;
}
