// The shared, rate-limited reading that everything an HTTP request can reach serves (health,
// Prometheus, OpenTelemetry). A glibc reading walks every free chunk under the arena locks, and
// the JS thread's mallocs wait for those locks: a reading per request would let a flood of
// requests stall the service. Here a running monitor's latest sample is served as is; without
// one, a reading is taken at most once per interval, an interval that stretches with the cost of
// the last walk (as a monitor's overhead budget does), and requests in between get the cached
// reading with its age.
import { binding } from '../binding';
import { getHeapStatistics } from 'node:v8';
import { composeBreakdown, statmRss, type Breakdown } from '../read/breakdown';
import { snapshotAsync } from '../read/core';
import { readSmapsAsync } from '../read/smaps';
import type { Snapshot } from '../base/types';
import type { Verdict } from '../diagnose/verdict';

/** Where a served reading came from. */
export type ReadingSource = 'monitor' | 'cache' | 'fresh';

/** A snapshot as served to an endpoint, with how old it is and what it cost. */
export interface SharedReading {
  snapshot: Snapshot;
  /** 'monitor': a running monitor's latest sample; 'fresh': read for this request (or one in flight); 'cache': an earlier reading. */
  source: ReadingSource;
  /** Milliseconds since the reading was taken. */
  ageMs: number;
  /**
   * The least time between two readings taken for endpoints, ms, now: the asked-for minimum,
   * stretched to `durationMs / maxOverhead` of the slowest recent walk.
   */
  minIntervalMs: number;
}

/** Largest share of wall time endpoint readings may take, as a monitor's default budget. */
export const readingMaxOverhead = 0.002;
/** Default least time between two readings taken for endpoints, ms. */
export const readingMinIntervalMs = 1000;

interface Entry {
  snapshot: Snapshot;
  /** performance.now() when the reading started. */
  at: number;
  fromMonitor: boolean;
}

/** What a running monitor offers: its latest sample and whether it has detail. */
export interface ReadingSourceHandle {
  publish(snapshot: Snapshot): void;
  detach(): void;
}

interface State {
  // Newest reading with detail, and newest without (a detail reading serves both).
  detail: Entry | null;
  plain: Entry | null;
  inFlight: { detail: boolean; promise: Promise<Entry> } | null;
  // Durations of the last few walks (from monitors too), ms: they set the pace.
  costs: number[];
  /** Monitors running, each with the detail flag it samples with. */
  monitors: Set<{ detail: boolean }>;
}

// Kept on the addon's exports, as core.ts keeps its trim log: a second evaluation of this module
// (a cleared require cache) shares the readings and their pace instead of walking at its own.
const shared = binding as typeof binding & {
  readingState?: State;
  readingVerdicts?: Set<() => Verdict>;
  readingBreakdown?: BreakdownState;
};
const state: State = (shared.readingState ??= {
  detail: null,
  plain: null,
  inFlight: null,
  costs: [],
  monitors: new Set(),
});

// Running monitors' verdicts, oldest first (shared the same way).
const verdicts = (shared.readingVerdicts ??= new Set<() => Verdict>());

function account(costMs: number): void {
  if (!Number.isFinite(costMs)) return;
  state.costs.push(costMs);
  if (state.costs.length > 5) state.costs.shift();
}

function interval(minIntervalMs: number): number {
  const worst = state.costs.reduce((a, b) => (b > a ? b : a), 0);
  return Math.max(minIntervalMs, worst / readingMaxOverhead);
}

function store(entry: Entry, detail: boolean): void {
  if (detail && (!state.detail || state.detail.at <= entry.at)) state.detail = entry;
  if (!state.plain || state.plain.at <= entry.at) state.plain = entry;
}

function newest(detail: boolean): Entry | null {
  if (detail) return state.detail;
  const d = state.detail;
  const p = state.plain;
  return d && (!p || d.at >= p.at) ? d : p;
}

/**
 * Registers a running monitor: each sample it publishes becomes the reading endpoints serve, and
 * while it runs endpoints take no reading of their own once it has published one.
 */
export function attachMonitor(detail: boolean, verdict?: () => Verdict): ReadingSourceHandle {
  const me = { detail };
  state.monitors.add(me);
  if (verdict) verdicts.add(verdict);
  return {
    publish(snapshot) {
      account(snapshot.durationMs);
      store(
        { snapshot, at: performance.now() - (Date.now() - snapshot.timestamp), fromMonitor: true },
        detail,
      );
    },
    detach() {
      state.monitors.delete(me);
      if (verdict) verdicts.delete(verdict);
    },
  };
}

function serve(e: Entry, source: ReadingSource, minIntervalMs: number): SharedReading {
  return {
    snapshot: e.snapshot,
    source: e.fromMonitor ? 'monitor' : source,
    ageMs: Math.max(0, Math.round(performance.now() - e.at)),
    minIntervalMs: interval(minIntervalMs),
  };
}

function take(detail: boolean): Promise<Entry> {
  const at = performance.now();
  // A failed read is not cached: the next request asks again (the allocator interface errors
  // fragstat knows of fail at once, before any walk), and the caller reports it.
  const promise = snapshotAsync({ detail }).then((snapshot) => {
    account(snapshot.durationMs);
    const entry = { snapshot, at, fromMonitor: false };
    store(entry, detail);
    return entry;
  });
  const flight = { detail, promise };
  state.inFlight = flight;
  const clear = () => {
    if (state.inFlight === flight) state.inFlight = null;
  };
  promise.then(clear, clear);
  return promise;
}

/**
 * The reading to serve now. A running monitor's newest sample (with detail if asked) when there
 * is one; else the newest reading when it is younger than the pace allows; else a reading taken
 * now, shared by every request that arrives while it runs. Rejects with the allocator's error
 * when a needed reading fails.
 */
export async function sharedReading(
  detail: boolean,
  minIntervalMs: number = readingMinIntervalMs,
): Promise<SharedReading> {
  const have = newest(detail);
  if (have?.fromMonitor && [...state.monitors].some((m) => m.detail || !detail)) {
    return serve(have, 'monitor', minIntervalMs);
  }
  if (have && performance.now() - have.at < interval(minIntervalMs)) {
    return serve(have, 'cache', minIntervalMs);
  }
  if (state.inFlight && (state.inFlight.detail || !detail)) {
    return serve(await state.inFlight.promise, 'fresh', minIntervalMs);
  }
  if (state.inFlight && have) return serve(have, 'cache', minIntervalMs); // never two walks at once
  return serve(await take(detail), 'fresh', minIntervalMs);
}

// ---- breakdown and verdict for endpoints -------------------------------------------------------

/** Least time between two breakdowns taken for endpoints, ms: each reads /proc/self/smaps. */
export const breakdownMinIntervalMs = 60_000;

/** A breakdown as served to an endpoint, with its age. */
export interface SharedBreakdown {
  breakdown: Breakdown;
  /** Milliseconds since it was taken. */
  ageMs: number;
}

interface BreakdownState {
  entry: { breakdown: Breakdown; at: number } | null;
  inFlight: Promise<void> | null;
}

const bd: BreakdownState = (shared.readingBreakdown ??= { entry: null, inFlight: null });

function refreshBreakdown(): Promise<void> {
  if (bd.inFlight) return bd.inFlight;
  const at = performance.now();
  // The allocator figures come from the shared reading, so a breakdown adds no walk of the heap
  // of its own: only the smaps read (off the JS thread) and its parse.
  const flight = Promise.all([sharedReading(false), readSmapsAsync()]).then(
    ([reading, smaps]) => {
      if (smaps === null) return;
      const b = composeBreakdown(smaps, reading.snapshot, getHeapStatistics().total_physical_size);
      bd.entry = { breakdown: { ...b, durationMs: performance.now() - at, rssAfterBytes: statmRss() }, at };
    },
    () => {
      // /proc unreadable or the allocator read failed: endpoints go on without a breakdown.
    },
  );
  bd.inFlight = flight.finally(() => {
    bd.inFlight = null;
  });
  return bd.inFlight;
}

/**
 * The newest breakdown for an endpoint, built from the shared reading's allocator figures (as old
 * as that reading) and a fresh read of /proc/self/smaps. Taken at most once per `minIntervalMs`;
 * only the first call waits for one: later calls get the newest one at once, and a stale one starts
 * a refresh in the background. Null where none could be taken.
 */
export async function sharedBreakdown(
  minIntervalMs: number = breakdownMinIntervalMs,
): Promise<SharedBreakdown | null> {
  if (bd.entry === null) await refreshBreakdown();
  else if (performance.now() - bd.entry.at >= minIntervalMs) void refreshBreakdown();
  const e = bd.entry;
  return e && { breakdown: e.breakdown, ageMs: Math.max(0, Math.round(performance.now() - e.at)) };
}

/** The verdict of the monitor running longest, or null when none runs. */
export function monitorVerdict(): Verdict | null {
  for (const fn of verdicts) return fn();
  return null;
}
