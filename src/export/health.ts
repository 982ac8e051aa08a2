// A compact, JSON-safe summary for a health endpoint, and a ready HTTP handler.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { trim, trimLog } from '../read/core';
import { doctor, type Finding, type Severity } from '../diagnose/doctor';
import { readAnonymousRss } from '../read/smaps';
import type { BreakdownParts } from '../read/breakdown';
import {
  monitorVerdict,
  sharedBreakdown,
  sharedReading,
  type ReadingSource,
  type SharedReading,
} from '../monitor/reading';
import type { Verdict } from '../diagnose/verdict';
import type { Snapshot, TrimResult } from '../base/types';
import { checkBoolean, checkKeys, checkNumber, checkOptions } from '../base/validate';

/** The snapshot's own figures, as the snapshot documents them. */
type HealthFigures = Pick<
  Snapshot,
  | 'allocator'
  | 'timestamp'
  | 'rssBytes'
  | 'allocatedBytes'
  | 'freeBytes'
  | 'residentFreeBytes'
  | 'heapBytes'
  | 'arenas'
>;

export interface HealthReport extends HealthFigures {
  /** The doctor's worst finding: 'ok' when there is none (or only 'info' ones). */
  status: 'ok' | 'warn' | 'critical';
  fragmentationRatio: number | null;
  rssRatio: number | null;
  trims: number;
  trimReleasedBytesTotal: number;
  lastTrim: Pick<TrimResult, 'timestamp' | 'releasedBytes' | 'durationMs'> | null;
  findings: Pick<Finding, 'id' | 'severity' | 'title'>[];
  /**
   * Where the figures come from: 'monitor' (a running monitor's latest sample), 'cache' (an
   * earlier reading, served because readings are rate-limited) or 'fresh' (read for this call).
   */
  source: ReadingSource;
  /** Age of the figures, ms. */
  ageMs: number;
  /**
   * Least time between two readings taken for endpoints, ms: 1000, stretched to 500 times the
   * slowest recent reading (0.2% of wall time) when walks are slow.
   */
  readingIntervalMs: number;
  /**
   * RSS by owner (see breakdown()), from a breakdown taken at most once a minute off the JS thread:
   * `ageMs` says how old. Null when `breakdown: false` or /proc/self/smaps cannot be read.
   */
  breakdown: { ageMs: number; rssBytes: number; parts: BreakdownParts } | null;
  /** A running monitor's verdict on its history (kind, title, confidence), or null when no monitor runs. */
  verdict: Pick<Verdict, 'kind' | 'title' | 'confidence'> | null;
}

export interface HealthOptions {
  /** Read detail figures (glibc arenas; needed by the arenas rule). Runs off the JS thread. Default false. */
  detail?: boolean;
  /** Include the RSS breakdown (one /proc/self/smaps read a minute at most). Default true. */
  breakdown?: boolean;
}

const worst = (findings: Finding[]): HealthReport['status'] => {
  const rank: Severity[] = findings.map((f) => f.severity);
  return rank.includes('critical') ? 'critical' : rank.includes('warn') ? 'warn' : 'ok';
};

/**
 * Summarises the shared reading (a running monitor's latest sample, or a reading taken off the JS
 * thread at most once per readingIntervalMs) and the doctor's findings on it.
 */
export async function health(options?: HealthOptions): Promise<HealthReport> {
  const o = checkOptions('health(options)', options);
  checkKeys('health(options)', o, ['detail', 'breakdown']);
  const detail = checkBoolean('options.detail', o.detail, false);
  const withBreakdown = checkBoolean('options.breakdown', o.breakdown, true);
  const [reading, b] = await Promise.all([sharedReading(detail), withBreakdown ? sharedBreakdown() : null]);
  const r = report(reading);
  r.breakdown = b && { ageMs: b.ageMs, rssBytes: b.breakdown.rssBytes, parts: { ...b.breakdown.parts } };
  return r;
}

// The report of the last reading served: a flood of requests between two readings costs a copy
// each, not a doctor's examination and its garbage.
let last: { snapshot: object; trims: number; report: HealthReport } | null = null;

function report(r: SharedReading): HealthReport {
  const log = trimLog();
  if (!last || last.snapshot !== r.snapshot || last.trims !== log.count) {
    last = { snapshot: r.snapshot, trims: log.count, report: build(r, log) };
  }
  // A copy: the caller may change what it gets.
  const b = last.report;
  return {
    ...b,
    lastTrim: b.lastTrim && { ...b.lastTrim },
    findings: b.findings.map((f) => ({ ...f })),
    verdict: b.verdict && { ...b.verdict },
    source: r.source,
    ageMs: r.ageMs,
    readingIntervalMs: r.minIntervalMs,
  };
}

function build(r: SharedReading, log: ReturnType<typeof trimLog>): HealthReport {
  const s = r.snapshot;
  // The shared reading is of this process: its anonymous memory now is the figure to weigh.
  const findings = doctor(s, { anonymousRssBytes: readAnonymousRss() });
  return {
    status: worst(findings),
    allocator: s.allocator,
    timestamp: s.timestamp,
    rssBytes: s.rssBytes,
    allocatedBytes: s.allocatedBytes,
    freeBytes: s.freeBytes,
    residentFreeBytes: s.residentFreeBytes,
    heapBytes: s.heapBytes,
    arenas: s.arenas,
    fragmentationRatio: s.ratios.fragmentation,
    rssRatio: s.ratios.rss,
    trims: log.count,
    trimReleasedBytesTotal: log.releasedBytesTotal,
    lastTrim: log.last && {
      timestamp: log.last.timestamp,
      releasedBytes: log.last.releasedBytes,
      durationMs: log.last.durationMs,
    },
    findings: findings.map(({ id, severity, title }) => ({ id, severity, title })),
    source: r.source,
    ageMs: r.ageMs,
    readingIntervalMs: r.minIntervalMs,
    breakdown: null,
    verdict: verdictSummary(),
  };
}

// Computed once per reading (a monitor's verdict walks its whole history), not once per request.
function verdictSummary(): HealthReport['verdict'] {
  const v = monitorVerdict();
  return v && { kind: v.kind, title: v.title, confidence: v.confidence };
}

export interface HealthHandlerOptions extends HealthOptions {
  /**
   * Let POST requests trim (answering with the TrimResult). Off by default: anyone who can reach
   * the endpoint could then make the process trim. Protect the route (auth, internal port) first.
   */
  allowTrim?: boolean;
  /**
   * With allowTrim: at most one trim per this many ms; others get 429 with Retry-After (without
   * it when Infinity: one trim per handler). Default 60000.
   */
  trimMinIntervalMs?: number;
  /** HTTP status when the report's status is 'critical'. Default 200 (the body carries the status). */
  criticalStatusCode?: number;
}

function send(res: ServerResponse, code: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(code, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(text).toString(),
    ...headers,
  });
  res.end(text);
}

/**
 * A (req, res) handler for node:http, Express and anything with the same shape: GET (or HEAD)
 * answers the HealthReport as JSON; POST trims when allowTrim is set (rate-limited), else 405.
 */
export function healthHandler(
  options?: HealthHandlerOptions,
): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const o = checkOptions('healthHandler(options)', options);
  checkKeys('healthHandler(options)', o, [
    'detail',
    'breakdown',
    'allowTrim',
    'trimMinIntervalMs',
    'criticalStatusCode',
  ]);
  const withBreakdown = checkBoolean('options.breakdown', o.breakdown, true);
  const detail = checkBoolean('options.detail', o.detail, false);
  const allowTrim = checkBoolean('options.allowTrim', o.allowTrim, false);
  const minInterval = checkNumber('options.trimMinIntervalMs', o.trimMinIntervalMs, 60_000, 0, Infinity);
  const criticalCode = checkNumber('options.criticalStatusCode', o.criticalStatusCode, 200, 100, 599, true);
  let lastTrimAt = -Infinity;
  let trimming = false;

  return async (req, res) => {
    try {
      if (req.method === 'GET' || req.method === 'HEAD') {
        const report = await health({ detail, breakdown: withBreakdown });
        send(res, report.status === 'critical' ? criticalCode : 200, report);
        return;
      }
      if (req.method === 'POST') {
        if (!allowTrim) {
          send(
            res,
            405,
            { error: 'trimming over HTTP is disabled (healthHandler({ allowTrim: true }))' },
            { allow: 'GET, HEAD' },
          );
          return;
        }
        const wait = lastTrimAt + minInterval - performance.now();
        if (trimming || wait > 0) {
          // With trimMinIntervalMs: Infinity a second trim never comes: no Retry-After then.
          const retry = !(wait > 0) ? 1 : Number.isFinite(wait) ? Math.max(1, Math.ceil(wait / 1000)) : null;
          send(
            res,
            429,
            { error: 'a trim ran recently', retryAfterSeconds: retry },
            retry === null ? {} : { 'retry-after': String(retry) },
          );
          return;
        }
        trimming = true;
        try {
          const result = await trim();
          lastTrimAt = performance.now();
          send(res, 200, result);
        } finally {
          trimming = false;
        }
        return;
      }
      send(
        res,
        405,
        { error: `method ${req.method} not allowed` },
        { allow: allowTrim ? 'GET, HEAD, POST' : 'GET, HEAD' },
      );
    } catch (err) {
      if (!res.headersSent)
        send(res, 500, { error: (err as Error).message, code: (err as { code?: string }).code });
      else res.destroy(err as Error);
    }
  };
}
