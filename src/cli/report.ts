// `fragstat run --report FILE` and `fragstat report`: gather the lines the hook writes, add the
// verdict and the doctor's findings, and write the HTML report (src/report/report.ts draws it).
import { accessSync, constants, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { collectBundle } from './report-bundle';
import {
  num,
  renderReport,
  type ReportBreakdown,
  type ReportFinding,
  type ReportInput,
  type ReportSample,
  type ReportTrim,
  type ReportVerdict,
} from '../report/report';

/** A failure of the report's file or input, printed without the usage text. */
export class ReportError extends Error {}

export const reportUsage = `  fragstat report <samples.ndjson | bundle-dir> -o <report.html> [--json]
      Renders the HTML report from a recording (fragstat run --out, or a monitor's samples written
      as JSON lines) or a capture bundle (docs/CAPTURE.md); --json prints the verdict, the last
      breakdown and the findings as JSON.`;

export const doctorUsage = `  fragstat doctor <samples.ndjson | bundle-dir>
      Says what a recording shows: the verdict over its samples (JS heap growth, native growth,
      fragmentation, stable) and the doctor's findings on its last sample, with what to do.`;

type Fragstat = typeof import('../index');
type Row = Record<string, unknown>;

/** The report's material, line by line as the hook writes it. */
export class ReportCollector {
  samples: ReportSample[] = [];
  last: Row | null = null;
  breakdowns: ReportBreakdown[] = [];
  trims: ReportTrim[] = [];
  findings: ReportFinding[] | null = null;
  environment: Record<string, string> | null = null;
  argv: string[] | null = null;
  pid: number | null = null;
  ended = false;

  /** Takes one NDJSON line; anything that is not JSON is skipped. */
  line(text: string): void {
    if (!text.trim()) return;
    let row: unknown;
    try {
      row = JSON.parse(text);
    } catch {
      return; // a torn line at exit
    }
    if (row && typeof row === 'object' && !Array.isArray(row)) this.add(row as Row);
  }

  add(row: Row): void {
    if (this.pid === null && typeof row.pid === 'number') this.pid = row.pid;
    if (row.env && typeof row.env === 'object') {
      this.environment = Object.fromEntries(Object.entries(row.env as Row).map(([k, v]) => [k, String(v)]));
      if (Array.isArray(row.argv)) this.argv = row.argv.map(String);
    } else if (row.breakdown && typeof row.breakdown === 'object') {
      this.breakdowns.push(row.breakdown as ReportBreakdown);
    } else if (row.trim && typeof row.trim === 'object') {
      this.trims.push(row.trim as ReportTrim);
    } else if (Array.isArray(row.findings)) {
      this.findings = row.findings as ReportFinding[];
    } else if (typeof row.timestamp === 'number' && 'rssBytes' in row) {
      this.last = row;
      if (row.final === true) this.ended = true;
      // Keep the figures, not the allocator's raw fields or per-arena detail: a long run stays small.
      const s: Row = {};
      for (const [k, v] of Object.entries(row)) {
        if (typeof v === 'number' || v === null || k === 'allocator' || k === 'ratios') s[k] = v;
      }
      this.samples.push(s as unknown as ReportSample);
    }
  }
}

function loadFragstat(): Fragstat | null {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('../index') as Fragstat;
  } catch {
    return null;
  }
}

/**
 * The verdict over the samples and the breakdowns the report's lines carry (their resident free
 * figure is the one a quiet moment is judged by), or why there is none.
 */
export function verdictOf(c: ReportCollector): ReportVerdict | { unavailable: string } {
  const fragstat = loadFragstat();
  const verdict = (fragstat as { verdict?: (points: unknown[]) => ReportVerdict } | null)?.verdict;
  if (typeof verdict !== 'function') return { unavailable: 'This version of fragstat has no verdict().' };
  const points = [...c.samples, ...c.breakdowns].sort((a, b) => a.timestamp - b.timestamp);
  try {
    return verdict(points);
  } catch (err) {
    return { unavailable: `verdict() failed: ${(err as Error).message}` };
  }
}

// How old a resident free figure may be to stand for the last sample's.
const RESIDENT_FREE_MAX_AGE_MS = 60_000;

/**
 * The last sample, with the resident free figure of the newest sample or breakdown that has one
 * (a monitor reads it every 10 s under glibc, a breakdown always) when the last sample lacks it:
 * without it the doctor would weigh glibc's free bytes, which still count what trims gave back.
 */
function withResidentFree(c: ReportCollector): Row {
  const last = c.last!;
  if (typeof last.residentFreeBytes === 'number' || typeof last.timestamp !== 'number') return last;
  let free: number | null = null;
  let at = -Infinity;
  for (const s of c.samples) {
    if (typeof s.residentFreeBytes === 'number' && s.timestamp > at) {
      free = s.residentFreeBytes;
      at = s.timestamp;
    }
  }
  for (const b of c.breakdowns) {
    if (num(b.parts?.mallocFreeResident) && b.timestamp > at) {
      free = b.parts.mallocFreeResident;
      at = b.timestamp;
    }
  }
  const allocated = last.allocatedBytes;
  if (free === null || last.timestamp - at > RESIDENT_FREE_MAX_AGE_MS || typeof allocated !== 'number')
    return last;
  const held = allocated + free;
  const ratios = (last.ratios && typeof last.ratios === 'object' ? last.ratios : {}) as Row;
  return {
    ...last,
    residentFreeBytes: free,
    ratios: { ...ratios, residentFragmentation: held > 0 ? free / held : null },
  };
}

/** The application's own findings, or the doctor's reading of the last sample. */
function findingsOf(c: ReportCollector): { findings: ReportFinding[] | null; note: string | null } {
  if (c.findings) return { findings: c.findings, note: 'The doctor ran inside the application.' };
  if (!c.last) return { findings: null, note: null };
  const fragstat = loadFragstat();
  const last = withResidentFree(c);
  if (!fragstat) return { findings: null, note: 'fragstat could not be loaded to run the doctor.' };
  const v8 =
    typeof c.last.v8HeapBytes === 'number'
      ? c.last.v8HeapBytes
      : c.breakdowns.length
        ? c.breakdowns[c.breakdowns.length - 1].parts.v8Heap
        : null;
  try {
    // Outside the application, this process's V8 heap says nothing about it: without the
    // application's figure, the rule that needs it is left out.
    let findings = fragstat.doctor(last as never, {
      v8HeapBytes: v8 ?? 0,
      anonymousRssBytes: null,
    }) as ReportFinding[];
    if (v8 === null) findings = findings.filter((f) => f.id !== 'rss-above-allocated');
    return {
      findings,
      note:
        'The doctor read the last sample of the recording' +
        (v8 === null ? ' (no V8 heap figure was recorded, so rss-above-allocated was not checked).' : '.'),
    };
  } catch (err) {
    return { findings: null, note: `The doctor failed: ${(err as Error).message}` };
  }
}

function inputOf(c: ReportCollector, command: string[] | null, status: string): ReportInput {
  const f = findingsOf(c);
  const allocator =
    c.environment?.allocator ?? (typeof c.last?.allocator === 'string' ? c.last.allocator : null);
  return {
    command: command ?? c.argv,
    pid: c.pid,
    allocator,
    samples: c.samples,
    breakdowns: c.breakdowns,
    trims: c.trims,
    verdict: c.samples.length ? verdictOf(c) : null,
    findings: f.findings,
    findingsNote: f.note,
    environment: c.environment,
    status,
    generatedAt: Date.now(),
  };
}

/** Writes the file whole or not at all: a browser reloading it never sees half a report. */
function writeAtomically(file: string, text: string): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

/** Fails now, before the application starts, if `file` cannot be written. */
function checkWritable(file: string): void {
  const dir = path.dirname(path.resolve(file));
  try {
    accessSync(dir, constants.W_OK);
    if (statSync(file, { throwIfNoEntry: false })?.isDirectory()) throw new Error('it is a directory');
  } catch (err) {
    throw new ReportError(`cannot write ${file}: ${(err as Error).message}`);
  }
}

export interface RunReport {
  /** One line from the hook's pipe. */
  line(text: string): void;
  /** The application ended: write the final report and stop listening for SIGUSR2. */
  finish(code: number | null, signal: string | null): void;
}

/**
 * For `fragstat run --report FILE`: asks the hook for the report's lines (through `env`), and
 * writes the report when the application ends and whenever the CLI gets SIGUSR2.
 */
export function runReport(
  file: string,
  command: string[],
  env: Record<string, string | undefined>,
): RunReport {
  checkWritable(file);
  env.FRAGSTAT_RUN_REPORT = '1';
  const c = new ReportCollector();
  const write = (status: string) => {
    try {
      writeAtomically(file, renderReport(inputOf(c, command, status)));
      process.stderr.write(`[fragstat] wrote ${file} (${c.samples.length} samples)\n`);
    } catch (err) {
      process.stderr.write(`fragstat: writing ${file} failed: ${(err as Error).message}\n`);
    }
  };
  const onDemand = () => write('running (report taken on demand)');
  process.on('SIGUSR2', onDemand);
  return {
    line: (text) => c.line(text),
    finish: (code, signal) => {
      process.off('SIGUSR2', onDemand);
      write(signal ? `ended by ${signal}` : `exited with code ${code ?? 'n/a'}`);
    },
  };
}

/**
 * Feeds a recording (a file) or a capture bundle (a directory) to `c`: returns the file's text,
 * or the bundle's status line.
 */
function readInput(input: string, c: ReportCollector): string | { status: string | null } {
  if (statSync(input).isDirectory()) return { status: collectBundle(input, c).status };
  const text = readFileSync(input, 'utf8');
  for (const line of text.split('\n')) c.line(line);
  return text;
}

/** `fragstat report <samples.ndjson | bundle-dir> -o <report.html> [--json]`; returns the exit code. */
export function reportCommand(args: string[]): number {
  const fail = (message: string, code: number) => {
    process.stderr.write(`fragstat: ${message}\n${code === 2 ? `\nUsage:\n${reportUsage}\n` : ''}`);
    return code;
  };
  let input: string | null = null;
  let out: string | null = null;
  let json = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '-o' || a === '--out') {
      out = args[++i] ?? null;
      if (!out) return fail(`${a} needs a file name`, 2);
    } else if (a === '--json') json = true;
    else if (a.startsWith('-')) return fail(`unknown option ${JSON.stringify(a)} for report`, 2);
    else if (input) return fail('report takes one samples file', 2);
    else input = a;
  }
  if (!input) return fail('report needs a samples file', 2);
  if (!out && !json) return fail('report needs -o <report.html> or --json', 2);
  const c = new ReportCollector();
  let read: { status: string | null } | string;
  try {
    read = readInput(input, c);
  } catch (err) {
    return fail(`cannot read ${input}: ${(err as Error).message}`, 1);
  }
  if (c.samples.length === 0) return fail(`${input} has no samples`, 1);
  const bundleStatus = typeof read === 'string' ? null : read.status;
  if (json) {
    const f = findingsOf(c);
    const verdict = verdictOf(c);
    process.stdout.write(
      `${JSON.stringify(
        {
          verdict: 'kind' in verdict ? verdict : null,
          ...('kind' in verdict ? {} : { verdictUnavailable: verdict.unavailable }),
          breakdown: c.breakdowns.length ? c.breakdowns[c.breakdowns.length - 1] : null,
          findings: f.findings,
        },
        null,
        2,
      )}\n`,
    );
  }
  if (out) {
    try {
      checkWritable(out);
      const status =
        bundleStatus ??
        (c.ended ? 'ended (from a recording)' : 'the recording stops before the process ended');
      writeAtomically(out, renderReport(inputOf(c, null, status)));
    } catch (err) {
      return fail(
        err instanceof ReportError ? err.message : `writing ${out} failed: ${(err as Error).message}`,
        1,
      );
    }
    process.stderr.write(`[fragstat] wrote ${out} (${c.samples.length} samples)\n`);
  }
  return 0;
}

/** A verdict (or why there is none) as lines for a terminal. */
export function verdictText(v: ReportVerdict | { unavailable: string }): string[] {
  const lines: string[] = [];
  if ('kind' in v) {
    lines.push(`verdict: ${v.kind}: ${v.title}`);
    if (v.confidence) {
      const wait =
        typeof v.waitMs === 'number'
          ? `; sample about ${Math.ceil(v.waitMs / 60_000)} min more for a firmer one`
          : '';
      lines.push(`  confidence: ${v.confidence}${wait}`);
    }
    for (const b of v.because ?? []) lines.push(`  - ${b}`);
    if (v.advice) lines.push(`  ${v.advice}`);
  } else lines.push(`verdict: unavailable (${v.unavailable})`);
  return lines;
}

/** The doctor's findings (null: none, with `note` saying why) as lines for a terminal. */
export function findingsText(findings: ReportFinding[] | null, note: string | null = null): string[] {
  if (findings === null) return [`findings: none${note ? ` (${note})` : ''}`];
  if (findings.length === 0) return ['findings: none, nothing worth acting on'];
  const lines = [`findings (${findings.length}, worst first):`];
  for (const x of findings) lines.push(`  [${x.severity}] ${x.title}`, `    ${x.advice}`);
  return lines;
}

/** The verdict and the findings of a recording, as text for a terminal. */
export function doctorText(c: ReportCollector): string {
  const lines = verdictText(verdictOf(c));
  const f = findingsOf(c);
  lines.push(...findingsText(f.findings, f.note));
  if (c.trims.length) {
    const released = c.trims.reduce((a, t) => a + Math.max(0, Number(t.releasedBytes) || 0), 0);
    lines.push(`trims: ${c.trims.length}, ${(released / 1048576).toFixed(1)} MiB released in all`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Writes the HTML report of what `c` holds to `file` (whole or not at all); throws a ReportError
 * when it cannot be written.
 */
export function writeReport(
  file: string,
  c: ReportCollector,
  command: string[] | null,
  status: string,
): void {
  checkWritable(file);
  try {
    writeAtomically(file, renderReport(inputOf(c, command, status)));
  } catch (err) {
    throw new ReportError(`writing ${file} failed: ${(err as Error).message}`);
  }
}

export function doctorCommand(args: string[]): number {
  const fail = (message: string, code: number) => {
    process.stderr.write(`fragstat: ${message}\n${code === 2 ? `\nUsage:\n${doctorUsage}\n` : ''}`);
    return code;
  };
  const bad = args.find((a) => a.startsWith('-'));
  if (bad) return fail(`unknown option ${JSON.stringify(bad)} for doctor`, 2);
  if (args.length !== 1) return fail('doctor takes one samples file', 2);
  const c = new ReportCollector();
  let read: { status: string | null } | string;
  try {
    read = readInput(args[0], c);
  } catch (err) {
    return fail(`cannot read ${args[0]}: ${(err as Error).message}`, 1);
  }
  if (typeof read !== 'string' && read.status) process.stdout.write(`bundle: ${read.status}\n`);
  if (c.samples.length === 0) return fail(`${args[0]} has no samples`, 1);
  process.stdout.write(doctorText(c));
  return 0;
}
