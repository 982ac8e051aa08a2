// A diagnostic bundle written once as the process nears its container's memory limit or V8's heap
// limit, before the OOM killer or V8 ends it: the samples, the verdict, the breakdown, the
// doctor's findings, the allocator's own report, /proc's view of the process, and a jemalloc heap
// profile where profiling is on. A monitor drives it (MonitorOptions.capture); when to capture is
// capture-episode.ts, and the writing keeps off the JS thread where it can.
import { mkdir, open, readFile, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { getHeapStatistics } from 'node:v8';
import { binding } from '../binding';
import { breakdownAsync } from '../read/breakdown';
import { cgroupMemory } from '../read/cgroup';
import {
  captureEpisode,
  cgroupLevel,
  heapLevel,
  type CaptureLevels,
  type CaptureReason,
  type CaptureSettings,
} from './capture-episode';
import { allocator } from '../read/core';
import { doctor } from '../diagnose/doctor';
import { heapProfilerStatus } from '../profile/profile';
import type { Snapshot } from '../base/types';
import type { Verdict } from '../diagnose/verdict';

/** The bounds of a bundle's pieces, bytes; a bundle is at most their sum (captureMaxBytes). */
export const captureBounds = {
  /** samples.ndjson: the newest samples that fit (older ones are left out). */
  samples: 4 * 1024 * 1024,
  /** The allocator's report (malloc_info XML, malloc_stats_print text): cut here. */
  allocatorStats: 4 * 1024 * 1024,
  /** jemalloc's heap profile: left out (and the manifest says why) when larger. */
  heapProfile: 6 * 1024 * 1024,
  /** Each other file (trigger, verdict, breakdown, findings, /proc files): cut here. */
  small: 256 * 1024,
  /** How many small files a bundle has at most, manifest included. */
  smallFiles: 7,
};

/** The most a bundle can take on disk, bytes (about 15.8 MiB). */
export const captureMaxBytes =
  captureBounds.samples +
  captureBounds.allocatorStats +
  captureBounds.heapProfile +
  captureBounds.small * captureBounds.smallFiles;

/** A file of a bundle, as its manifest lists it. */
export interface CaptureFile {
  name: string;
  bytes: number;
  /** What the file holds: 'json', 'ndjson', 'malloc_info', 'jemalloc_stats', 'heap_v2', 'text'. */
  format: string;
  /** Cut at its bound. */
  truncated?: boolean;
}

/** manifest.json: written last, by rename, so that a bundle with one is complete. */
export interface CaptureManifest {
  format: 'fragstat-capture';
  formatVersion: 1;
  pid: number;
  reason: CaptureReason;
  /** When the limit was seen near, and when the manifest was written, ms since the epoch. */
  triggeredAt: number;
  completedAt: number;
  files: CaptureFile[];
  /** Pieces left out, and why. */
  omitted: { name: string; why: string }[];
  /** Samples in samples.ndjson, and in the monitor's history. */
  samplesWritten: number;
  samplesInHistory: number;
  /** The bound the bundle keeps to (captureMaxBytes). */
  maxBytes: number;
}

/** What a monitor emits as 'capture' once a bundle is complete. */
export interface CaptureInfo {
  /** The bundle's directory. */
  dir: string;
  reason: CaptureReason;
  /** Bytes written, manifest included. */
  bytes: number;
  /** From the limit seen near to the manifest written, ms. */
  durationMs: number;
}

/** A sample as the capture reads it: a snapshot with V8's heap. */
export type CaptureSample = Snapshot & { v8HeapBytes: number };

/** What the capture needs of its monitor. */
export interface CaptureSource {
  history(): CaptureSample[];
  verdict(): Verdict;
  emit(event: string, value: unknown): boolean;
  listenerCount(event: string): number;
}

/** A monitor's capture: watches each sample and writes at most one bundle per episode. */
export class Capture {
  private armed = true;
  private writing = false;
  /** The bundle being written, until it is done (for tests and for a clean stop). */
  pending: Promise<CaptureInfo | null> | null = null;

  constructor(
    readonly settings: CaptureSettings,
    private readonly source: CaptureSource,
  ) {}

  /**
   * Called by the monitor after each sample: reads the cgroup (about eight small files) and V8's
   * heap statistics, and starts a bundle in the background when an episode begins.
   */
  sample(s: CaptureSample): void {
    if (this.writing) return;
    let levels: CaptureLevels;
    try {
      levels = { cgroup: cgroupLevel(this.settings.cgroup), heap: heapLevel() };
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    const next = captureEpisode(this.armed, levels, this.settings);
    this.armed = next.armed;
    if (next.fire === null) return;
    this.writing = true;
    this.pending = writeBundle(this.settings, next.fire, levels, s, this.source).then(
      (info) => {
        this.writing = false;
        try {
          this.source.emit('capture', info);
        } catch (err) {
          process.nextTick(() => {
            throw err;
          });
        }
        return info;
      },
      (err: Error) => {
        this.writing = false;
        this.fail(err);
        return null;
      },
    );
  }

  private fail(err: Error): void {
    if (this.source.listenerCount('error') > 0) this.source.emit('error', err);
  }
}

const json = (v: unknown) => `${JSON.stringify(v, null, 1)}\n`;
const stamp = (t: number) =>
  new Date(t)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');

/** Cuts a text to `max` bytes (UTF-8), at a character boundary. */
function cut(text: string, max: number): { text: string; truncated: boolean } {
  if (Buffer.byteLength(text) <= max) return { text, truncated: false };
  const b = Buffer.from(text).subarray(0, max);
  return { text: b.toString('utf8').replace(/\uFFFD$/, ''), truncated: true };
}

/**
 * Writes one bundle: each piece as soon as it is ready, small pieces first (a process killed
 * midway leaves what was written, without a manifest), then manifest.json, written to a temporary
 * name and renamed.
 */
async function writeBundle(
  settings: CaptureSettings,
  reason: CaptureReason,
  levels: CaptureLevels,
  sample: CaptureSample,
  source: CaptureSource,
): Promise<CaptureInfo> {
  const triggeredAt = Date.now();
  const t0 = performance.now();
  const parent = settings.dir;
  await mkdir(parent, { recursive: true });
  let dir = path.join(parent, `fragstat-capture-${process.pid}-${stamp(triggeredAt)}`);
  for (let i = 1; ; i++) {
    try {
      await mkdir(dir);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || i > 99) throw err;
      dir = path.join(parent, `fragstat-capture-${process.pid}-${stamp(triggeredAt)}-${i}`);
    }
  }
  const files: CaptureFile[] = [];
  const omitted: { name: string; why: string }[] = [];
  const put = async (name: string, format: string, text: string, max = captureBounds.small) => {
    const c = cut(text, max);
    await writeFile(path.join(dir, name), c.text);
    files.push({
      name,
      bytes: Buffer.byteLength(c.text),
      format,
      ...(c.truncated ? { truncated: true } : {}),
    });
  };
  const attempt = async (name: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (err) {
      omitted.push({ name, why: (err as Error).message });
    }
  };

  // What was seen: the levels that fired, the cgroup and V8's heap as they are now.
  await put(
    'trigger.json',
    'json',
    json({
      reason,
      triggeredAt,
      pid: process.pid,
      levels,
      cgroup: settings.cgroup && cgroupMemory(settings.cgroup),
      v8: getHeapStatistics(),
      allocator: allocator(),
      node: process.version,
      argv: [process.argv0, ...process.execArgv, ...process.argv.slice(1)],
    }),
  );
  // /proc's view: small files read on a pool thread.
  for (const [name, file] of [
    ['status.txt', '/proc/self/status'],
    ['smaps_rollup.txt', '/proc/self/smaps_rollup'],
  ]) {
    await attempt(name, async () => put(name, 'text', await readFile(file, 'utf8')));
  }
  const verdict = source.verdict();
  await put('verdict.json', 'json', json(verdict));

  // The samples the verdict was drawn from, newest kept, as NDJSON lines `fragstat report` reads.
  const history = source.history();
  const written = await writeSamples(path.join(dir, 'samples.ndjson'), history, sample);
  files.push({ name: 'samples.ndjson', bytes: written.bytes, format: 'ndjson' });

  await attempt('findings.json', async () =>
    put(
      'findings.json',
      'json',
      json(doctor(sample, { v8HeapBytes: sample.v8HeapBytes, anonymousRssBytes: null })),
    ),
  );
  // The breakdown reads /proc/self/smaps on a pool thread.
  await attempt('breakdown.json', async () => put('breakdown.json', 'json', json(await breakdownAsync())));
  await attempt('allocator stats', async () => {
    const stats = await binding.statsText(captureBounds.allocatorStats);
    if (stats === null) {
      omitted.push({ name: 'allocator stats', why: `${allocator().name} has no statistics report` });
      return;
    }
    const name = stats.format === 'malloc_info' ? 'malloc-info.xml' : 'jemalloc-stats.txt';
    await put(name, stats.format, stats.text, captureBounds.allocatorStats);
    if (stats.truncated) files[files.length - 1].truncated = true;
  });
  await attempt('jemalloc-heap.prof', async () => {
    const status = heapProfilerStatus();
    if (!status.available || !status.active) {
      omitted.push({
        name: 'jemalloc-heap.prof',
        why: status.available ? "jemalloc's profiler is paused" : status.reason!,
      });
      return;
    }
    const { text } = await binding.profileDump(process.env.TMPDIR || tmpdir());
    if (Buffer.byteLength(text) > captureBounds.heapProfile) {
      omitted.push({ name: 'jemalloc-heap.prof', why: `larger than ${captureBounds.heapProfile} bytes` });
      return;
    }
    await put('jemalloc-heap.prof', 'heap_v2', text, captureBounds.heapProfile);
  });

  const manifest: CaptureManifest = {
    format: 'fragstat-capture',
    formatVersion: 1,
    pid: process.pid,
    reason,
    triggeredAt,
    completedAt: Date.now(),
    files,
    omitted,
    samplesWritten: written.samples,
    samplesInHistory: history.length,
    maxBytes: captureMaxBytes,
  };
  const text = json(manifest);
  await writeFile(path.join(dir, 'manifest.json.tmp'), text);
  await rename(path.join(dir, 'manifest.json.tmp'), path.join(dir, 'manifest.json'));
  const bytes = files.reduce((a, f) => a + f.bytes, Buffer.byteLength(text));
  return { dir, reason, bytes, durationMs: performance.now() - t0 };
}

// Lines are gathered into chunks of about this size before each write.
const CHUNK_BYTES = 64 * 1024;

/**
 * samples.ndjson: a header line (pid, environment, argv, as `fragstat run --report` writes), then
 * the newest samples that fit in captureBounds.samples, oldest first, without per-arena detail.
 * The count kept is estimated from the newest sample's line, then every line is checked.
 */
async function writeSamples(
  file: string,
  history: CaptureSample[],
  latest: CaptureSample,
): Promise<{ bytes: number; samples: number }> {
  const line = (s: CaptureSample) => {
    const { detail: _detail, ...rest } = s as CaptureSample & { detail?: unknown };
    return `${JSON.stringify({ pid: process.pid, ...rest })}\n`;
  };
  const a = allocator();
  const header = `${JSON.stringify({
    pid: process.pid,
    env: {
      node: process.version,
      platform: `${process.platform} ${process.arch}`,
      allocator: a.name,
      'allocator version': a.version ?? 'n/a',
      'V8 heap limit': `${(getHeapStatistics().heap_size_limit / 1048576).toFixed(0)} MiB`,
    },
    argv: [process.argv0, ...process.execArgv, ...process.argv.slice(1)],
  })}\n`;
  const budget = captureBounds.samples - Buffer.byteLength(header);
  const each = Math.max(1, Buffer.byteLength(line(history[history.length - 1] ?? latest)));
  const kept = history.slice(-Math.max(1, Math.floor(budget / (each * 1.25))));
  const fh = await open(file, 'w');
  let bytes = 0;
  let samples = 0;
  try {
    let chunk = header;
    let chunkBytes = Buffer.byteLength(header);
    for (const s of kept) {
      const l = line(s);
      const n = Buffer.byteLength(l);
      if (bytes + chunkBytes + n > captureBounds.samples) break;
      chunk += l;
      chunkBytes += n;
      samples++;
      if (chunkBytes >= CHUNK_BYTES) {
        bytes += (await fh.write(chunk)).bytesWritten;
        chunk = '';
        chunkBytes = 0;
      }
    }
    if (chunk) bytes += (await fh.write(chunk)).bytesWritten;
  } finally {
    await fh.close();
  }
  return { bytes, samples };
}
