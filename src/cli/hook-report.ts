// What `fragstat run --report` needs from inside the application beyond the samples: one line
// with the environment and tunables at start, RSS breakdowns now and then, the trims the
// application made, and the doctor's findings. Each is one JSON line on the CLI's pipe.
import * as path from 'node:path';
import { getHeapStatistics } from 'node:v8';
import type { Monitor } from '../monitor/monitor';
import { hookSignals } from './hook-signals';

type Fragstat = typeof import('../index');
type Write = (obj: unknown) => void;

/** A breakdown at most this often: every BREAKDOWN_SAMPLES samples and BREAKDOWN_MS, whichever is longer. */
const BREAKDOWN_MS = 5000;
const BREAKDOWN_SAMPLES = 5;

/** Variables that tune the allocators, libuv and Node. */
const tunable =
  /^(MALLOC_|GLIBC_TUNABLES$|_?RJEM_MALLOC_CONF$|JE_MALLOC_CONF$|TCMALLOC_|MIMALLOC_|UV_THREADPOOL_SIZE$)/;

/** The environment and tunables in effect, as name -> text. */
export function environment(fragstat: Fragstat): Record<string, string> {
  const a = fragstat.allocator();
  const heap = getHeapStatistics();
  const env: Record<string, string> = {
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    allocator: a.name,
    'allocator version': a.version ?? 'n/a',
    'V8 heap limit': `${(heap.heap_size_limit / 1048576).toFixed(0)} MiB`,
  };
  if (a.limitations) env['allocator limitations'] = a.limitations;
  if (process.env.LD_PRELOAD) {
    env.LD_PRELOAD = process.env.LD_PRELOAD.split(/[:\s]+/)
      .filter(Boolean)
      .map((p) => path.basename(p))
      .join(' ');
  }
  for (const name of Object.keys(process.env).sort()) {
    if (tunable.test(name)) env[name] = process.env[name] ?? '';
  }
  // NODE_OPTIONS without fragstat's own --require of this hook.
  const hook = `--require ${JSON.stringify(path.join(__dirname, 'hook.js'))}`;
  const nodeOptions = (process.env.NODE_OPTIONS ?? '').replace(hook, '').trim();
  if (nodeOptions) env.NODE_OPTIONS = nodeOptions;
  if (process.execArgv.length) env['node flags'] = process.execArgv.join(' ');
  return env;
}

/** Starts the report's extra lines; call before the hook registers its final sample. */
export function reportExtras(fragstat: Fragstat, m: Monitor, write: Write): void {
  const pid = process.pid;
  write({
    pid,
    env: environment(fragstat),
    argv: [process.argv0, ...process.execArgv, ...process.argv.slice(1)],
  });
  // The breakdown comes with newer fragstat versions; without it the report draws what the
  // samples carry.
  const breakdownAsync = (fragstat as { breakdownAsync?: () => Promise<unknown> }).breakdownAsync;
  let trims = fragstat.trimLog().count;
  let sinceBreakdown = BREAKDOWN_SAMPLES;
  let lastBreakdownAt = -Infinity;
  let busy = false;

  const newTrims = () => {
    const log = fragstat.trimLog();
    if (log.count !== trims && log.last) write({ pid, trim: log.last, trims: log.count });
    trims = log.count;
  };
  const findings = (s: Parameters<Fragstat['doctor']>[0]) => {
    try {
      const anon = (fragstat as { anonymousRssBytes?: () => number | null }).anonymousRssBytes;
      write({ pid, findings: fragstat.doctor(s, anon ? { anonymousRssBytes: anon() } : undefined) });
    } catch {
      // the doctor is advice: a failure leaves the findings out
    }
  };

  m.on('sample', (s) => {
    newTrims();
    sinceBreakdown++;
    if (busy || sinceBreakdown < BREAKDOWN_SAMPLES || Date.now() - lastBreakdownAt < BREAKDOWN_MS) return;
    sinceBreakdown = 0;
    lastBreakdownAt = Date.now();
    findings(s);
    if (typeof breakdownAsync !== 'function') return;
    busy = true;
    breakdownAsync.call(fragstat).then(
      (breakdown) => {
        busy = false;
        write({ pid, breakdown });
      },
      () => {
        busy = false;
      },
    );
  });
  // Before the hook's final sample: at 'exit', or before a signal ends the process.
  hookSignals().atEnd(() => {
    newTrims();
    try {
      findings(fragstat.snapshot());
    } catch {
      // no snapshot at exit: the findings already written stand
    }
  });
}
