// `fragstat attach <pid>`: reads a running node process started without fragstat (src/attach/attach.ts
// opens its inspector and loads fragstat into it) and prints what it found.
import { attach, AttachError, type AttachResult } from '../attach/attach';
import { breakdownParts, type ReportVerdict } from '../report/report';
import { formatBytes } from '../base/format';
import { findingsText, ReportCollector, ReportError, verdictText, writeReport } from './report';

/** The usage text of `fragstat attach`, part of the CLI's help. */
export const attachUsage = `  fragstat attach <pid> [--watch <time>] [--trim] [--holders] [--report <file>] [--json]
      Reads a node process that is already running, started without fragstat: opens its
      inspector (as SIGUSR1 does), loads fragstat into it, prints where its memory goes, the
      allocator's figures and the doctor's findings, and closes the inspector again if it was
      closed. The process must be this user's and in this container (else run fragstat in it:
      kubectl exec POD -- npx fragstat attach 1). See docs/ATTACH.md.
      --watch <time>       run a monitor in it for that long (90s, 5m, 1h) with the inspector
                           closed, then collect the samples and give the verdict (Ctrl-C
                           ends the watch early and collects it)
      --interval <time>    the watch's sampling interval (default 1s)
      --trim               trim in it and say how much RSS came back
      --holders            take a heap snapshot of it (two with --watch: at the start and at the
                           end) and say which JS objects keep its native memory alive, and what
                           grew; the process stops while V8 writes each snapshot (about 100 s
                           per GiB of V8 heap)
      --report <file>      with --watch: write the HTML report
      --json               print one JSON object (reading, watch, trim, holders) instead of text
      --timeout <time>     how long to wait for its inspector after SIGUSR1 (default 5s)`;

/** A bad command line for attach (printed with the usage). */
export class AttachUsageError extends Error {}

interface AttachArgs {
  pid: number;
  watchMs: number;
  intervalMs: number;
  timeoutMs: number;
  trim: boolean;
  holders: boolean;
  json: boolean;
  report: string | null;
}

/** Parses attach's arguments; `duration` turns "90s" into ms. */
export function parseAttach(args: string[], duration: (text: string, what: string) => number): AttachArgs {
  // A watch of "90" would be 90 ms: attach's times need their unit.
  const time = (text: string, what: string) => {
    if (/^\d+(\.\d+)?$/.test(text.trim())) {
      throw new AttachUsageError(`${what} needs a unit: ${text}s, ${text}m or ${text}ms`);
    }
    return duration(text, what);
  };
  const o: AttachArgs = {
    pid: 0,
    watchMs: 0,
    intervalMs: 1000,
    timeoutMs: 5000,
    trim: false,
    holders: false,
    json: false,
    report: null,
  };
  let pid: string | null = null;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = () => {
      const v = args[++i];
      if (v === undefined) throw new AttachUsageError(`${a} needs a value`);
      return v;
    };
    if (a === '--watch') o.watchMs = time(value(), '--watch');
    else if (a === '--interval') o.intervalMs = time(value(), '--interval');
    else if (a === '--timeout') o.timeoutMs = time(value(), '--timeout');
    else if (a === '--trim') o.trim = true;
    else if (a === '--holders') o.holders = true;
    else if (a === '--json') o.json = true;
    else if (a === '--report') o.report = value();
    else if (a.startsWith('-')) throw new AttachUsageError(`unknown option ${JSON.stringify(a)} for attach`);
    else if (pid !== null) throw new AttachUsageError('attach takes one pid');
    else pid = a;
  }
  if (pid === null) throw new AttachUsageError('attach needs the pid of a node process (pgrep -a node)');
  if (!/^\d+$/.test(pid) || Number(pid) < 1) {
    throw new AttachUsageError(`${JSON.stringify(pid)} is not a pid: use a process number (pgrep -a node)`);
  }
  o.pid = Number(pid);
  if (o.report && !o.watchMs)
    throw new AttachUsageError('--report needs --watch <time>: the report draws its samples');
  return o;
}

const partLabel: Record<string, string> = {
  v8Heap: 'V8 heap (JavaScript objects)',
  mallocLive: 'malloc live',
  mallocFreeResident: 'malloc free, in RAM',
  allocatorOverhead: 'allocator overhead',
  code: 'code and mapped files',
  stacks: 'thread stacks',
  other: 'other',
};

const pct = (part: number, whole: number) => (whole > 0 ? `${((part / whole) * 100).toFixed(0)}%` : '');

/** What holds the native memory (and, after a watch, what grew), as lines. */
function holdersText(h: NonNullable<AttachResult['holders']>): string[] {
  const a = h.after;
  const lines = [
    `native memory JS objects keep alive: ${formatBytes(a.nativeBytes)} (heap snapshot of ${formatBytes(a.snapshotBytes)}, ` +
      `taken and read in ${h.snapshotMs.map((ms) => `${(ms / 1000).toFixed(1)} s`).join(' and ')}; ` +
      'the process stands still while V8 writes a snapshot):',
  ];
  const settled = h.settledBytes.filter((b): b is number => b !== null);
  if (settled.length) {
    lines.push(
      `  (a trim after each snapshot gave back ${settled.map((b) => formatBytes(Math.max(0, b))).join(' and ')}: ` +
        "V8 builds a snapshot with malloc, and the process's other free memory went with it)",
    );
  }
  // The groups that matter: at most ten, each at least 1% of the native bytes (and 64 KiB).
  const floor = Math.max(64 * 1024, a.nativeBytes / 100);
  const shown = a.groups.filter((g) => g.bytes >= floor).slice(0, 10);
  for (const g of shown) lines.push(`  ${g.description}`);
  const rest = a.groups.length - shown.length;
  if (rest > 0) {
    const restBytes = a.nativeBytes - shown.reduce((sum, g) => sum + g.bytes, 0);
    lines.push(`  (${rest} smaller groups, ${formatBytes(Math.max(0, restBytes))}; --json lists them)`);
  }
  if (h.diff) {
    // What grew by at least 64 KiB (and 1% of the change): a pool slab's few KiB is noise.
    const least = Math.max(64 * 1024, Math.abs(h.diff.nativeBytesDelta) / 100);
    const grew = h.diff.changes.filter((c) => c.bytesDelta >= least).slice(0, 5);
    lines.push(
      `grew over the watch: ${h.diff.nativeBytesDelta >= 0 ? '+' : '-'}${formatBytes(Math.abs(h.diff.nativeBytesDelta))} of native memory held` +
        (grew.length ? ', most of it by:' : ''),
    );
    for (const c of grew) {
      lines.push(`  +${formatBytes(c.bytesDelta)} (+${c.countDelta} ${c.kind}): ${c.description}`);
    }
  }
  return lines;
}

/** The result as text for a terminal. */
export function attachText(r: AttachResult): string {
  const x = r.reading;
  const lines: string[] = [];
  const uptime =
    x.uptimeMs >= 86_400_000
      ? `${(x.uptimeMs / 86_400_000).toFixed(1)} d`
      : x.uptimeMs >= 3_600_000
        ? `${(x.uptimeMs / 3_600_000).toFixed(1)} h`
        : `${(x.uptimeMs / 60_000).toFixed(1)} min`;
  lines.push(`process ${x.pid}: node ${x.nodeVersion}, up ${uptime}: ${x.argv.join(' ')}`);
  lines.push(
    `allocator: ${x.allocator.name}${x.allocator.version ? ` ${x.allocator.version}` : ''}` +
      (x.allocator.limitations ? ` (${x.allocator.limitations})` : ''),
  );
  const b = x.breakdown;
  lines.push(`RSS ${formatBytes(b.rssBytes)}:`);
  for (const part of breakdownParts) {
    const v = b.parts[part];
    const partial = b.partial.includes(part) ? ' (estimate)' : '';
    lines.push(
      `  ${partLabel[part].padEnd(30)}${formatBytes(v).padStart(11)} ${pct(v, b.rssBytes).padStart(4)}${partial}`,
    );
  }
  const s = x.snapshot;
  const fig = (v: number | null) => (v === null ? 'n/a' : formatBytes(v));
  lines.push(
    `malloc: allocated ${fig(s.allocatedBytes)}, free ${fig(s.freeBytes)}` +
      (s.residentFreeBytes !== null ? ` (${fig(s.residentFreeBytes)} of it in RAM)` : '') +
      `, heap ${fig(s.heapBytes)}` +
      (s.arenas !== null ? `, ${s.arenas} arenas` : ''),
  );
  if (r.watch) {
    const w = r.watch;
    lines.push(
      `watched ${(w.durationMs / 1000).toFixed(0)} s, ${w.samples.length} samples every ${w.intervalMs} ms:`,
    );
    const first = w.samples[0];
    const last = w.samples[w.samples.length - 1];
    if (first && last && first.rssBytes !== null && last.rssBytes !== null) {
      lines.push(`  RSS ${formatBytes(first.rssBytes)} -> ${formatBytes(last.rssBytes)}`);
    }
    lines.push(...verdictText(w.verdict as unknown as ReportVerdict).map((l) => `  ${l}`));
    lines.push(...findingsText(w.findings).map((l) => `  ${l}`));
  } else {
    lines.push(...findingsText(x.findings));
    lines.push('verdict: one reading says where the memory is, not why it grows: add --watch 5m for that');
  }
  if (r.trim) {
    const t = r.trim;
    if (!t.trims.some((x) => x.supported)) lines.push(`trim: not supported under ${x.allocator.name}`);
    else
      lines.push(
        `trim: RSS ${fig(t.rssBeforeBytes)} -> ${fig(t.rssAfterBytes)}, released ${t.releasedBytes === null ? 'n/a' : formatBytes(Math.max(0, t.releasedBytes))}` +
          (t.releasedBytes !== null && t.releasedBytes < 0 ? ' (RSS grew meanwhile)' : ''),
      );
  }
  if (r.holders) lines.push(...holdersText(r.holders));
  const i = r.inspector;
  lines.push(
    `inspector: ${i.wasOpen ? 'was open' : 'opened'} on ${i.address}:${i.port} for ${i.openMs} ms, ` +
      (i.wasOpen ? 'left open as it was' : i.restored ? 'closed again' : 'STILL OPEN: it did not close'),
  );
  lines.push('fragstat stays loaded in the process (a native addon cannot be unloaded).');
  return `${lines.join('\n')}\n`;
}

/** `fragstat attach`; returns the exit code. */
export async function attachCommand(
  args: string[],
  duration: (text: string, what: string) => number,
): Promise<number> {
  let o: AttachArgs;
  try {
    o = parseAttach(args, duration);
  } catch (err) {
    if (err instanceof AttachUsageError) {
      process.stderr.write(`fragstat: ${err.message}\n\nUsage:\n${attachUsage}\n`);
      return 2;
    }
    throw err;
  }
  const say = (m: string) => process.stderr.write(`[fragstat] ${m}\n`);
  let r: AttachResult;
  // Ctrl-C during a watch ends it early and still collects it (and stops the monitor).
  const early = new AbortController();
  const onInt = () => {
    if (early.signal.aborted) process.exit(130);
    early.abort();
  };
  if (o.watchMs) process.on('SIGINT', onInt);
  try {
    r = await attach(o.pid, {
      signal: early.signal,
      watchMs: o.watchMs,
      intervalMs: o.intervalMs,
      timeoutMs: o.timeoutMs,
      trim: o.trim,
      holders: o.holders,
      onProgress: say,
    });
  } catch (err) {
    // AttachError says what to do; anything else (a connection the process dropped) is said as is.
    process.stderr.write(
      `fragstat: ${err instanceof AttachError ? '' : 'attach failed: '}${(err as Error).message}\n`,
    );
    return 1;
  } finally {
    process.off('SIGINT', onInt);
  }
  if (o.report && r.watch) {
    const c = new ReportCollector();
    c.pid = r.pid;
    c.add({ breakdown: r.reading.breakdown });
    for (const s of r.watch.samples) c.add(s as unknown as Record<string, unknown>);
    c.add({ breakdown: r.watch.breakdown });
    c.add({ findings: r.watch.findings });
    for (const t of r.trim?.trims ?? []) if (t.supported) c.add({ trim: t });
    try {
      writeReport(
        o.report,
        c,
        r.reading.argv,
        `running (attached for ${(r.watch.durationMs / 1000).toFixed(0)} s)`,
      );
      say(`wrote ${o.report} (${r.watch.samples.length} samples)`);
    } catch (err) {
      process.stderr.write(`fragstat: ${(err as ReportError).message}\n`);
      return 1;
    }
  }
  process.stdout.write(o.json ? `${JSON.stringify(r, null, 2)}\n` : attachText(r));
  return r.inspector.restored ? 0 : 1;
}
