// What wakes the trim policy between samples: the process's CPU use, read once a second (to see
// it go quiet after a burst), and V8's major GCs (which free the memory of dead Buffers and other
// external memory). Each look costs one getrusage; nothing here keeps the process alive.
import { constants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';

export interface ActivityHandlers {
  /** One window of CPU use: a share of one core (all threads) over [start, end], ms. */
  onWindow?: (cpuShare: number, start: number, end: number) => void;
  /** A V8 major GC ended. */
  onMajorGc?: () => void;
}

/** Stops watching. */
export type StopWatching = () => void;

/** Watches the process's activity; windowMs apart for CPU use. */
export function watchActivity(windowMs: number, handlers: ActivityHandlers): StopWatching {
  let timer: NodeJS.Timeout | null = null;
  let observer: PerformanceObserver | null = null;
  if (handlers.onWindow) {
    const onWindow = handlers.onWindow;
    let at = performance.now();
    let cpu = process.cpuUsage();
    timer = setInterval(() => {
      const now = performance.now();
      const used = process.cpuUsage(cpu);
      cpu = process.cpuUsage();
      const share = (used.user + used.system) / 1000 / Math.max(1, now - at);
      const start = at;
      at = now;
      onWindow(share, start, now);
    }, windowMs);
    timer.unref();
  }
  if (handlers.onMajorGc) {
    const onMajorGc = handlers.onMajorGc;
    observer = new PerformanceObserver((list) => {
      if (list.getEntries().some(isMajorGc)) onMajorGc();
    });
    observer.observe({ entryTypes: ['gc'] });
  }
  return () => {
    if (timer) clearInterval(timer);
    observer?.disconnect();
    timer = null;
    observer = null;
  };
}

function isMajorGc(e: PerformanceEntry): boolean {
  const kind = (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
  return kind === constants.NODE_PERFORMANCE_GC_MAJOR;
}
