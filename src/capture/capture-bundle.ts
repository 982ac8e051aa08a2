// Reads back a bundle the capture wrote (capture.ts) and checks it: the manifest, every file
// it lists (present, of the size it says, parseable as its format). Plain file reads, no N-API:
// `fragstat report <bundle-dir>` and the tests use it.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import type { CaptureManifest } from './capture';

/** A bundle as read from disk. */
export interface CaptureBundle {
  dir: string;
  /** The manifest, or null when there is none (the process ended before the bundle was done). */
  manifest: CaptureManifest | null;
  /** A manifest, and every file it lists present, of its size and parseable. */
  complete: boolean;
  /** What is wrong, in sentences; empty for a complete bundle. */
  problems: string[];
  /** The files' texts by name: those the manifest lists, or every file there without one. */
  texts: Record<string, string>;
}

/** Whether `text` parses as `format` ('json', 'ndjson', 'malloc_info', 'heap_v2', ...); why not, or null. */
export function formatProblem(format: string, text: string): string | null {
  try {
    if (format === 'json') JSON.parse(text);
    else if (format === 'ndjson') {
      for (const line of text.split('\n')) if (line.trim()) JSON.parse(line);
    } else if (format === 'malloc_info') {
      if (!/^<malloc version="\d+">/.test(text)) return 'does not start as malloc_info XML does';
      if (!text.trimEnd().endsWith('</malloc>')) return 'malloc_info XML without its closing tag';
    } else if (format === 'jemalloc_stats') {
      if (!text.includes('Begin jemalloc statistics')) return 'not jemalloc statistics';
    } else if (format === 'heap_v2') {
      if (!text.startsWith('heap_v2/')) return 'not a heap_v2 profile';
    }
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

/** Reads and checks the bundle in `dir`. @throws Error when `dir` cannot be read. */
export function readCaptureBundle(dir: string): CaptureBundle {
  const problems: string[] = [];
  const texts: Record<string, string> = {};
  let manifest: CaptureManifest | null = null;
  const names = readdirSync(dir);
  if (names.includes('manifest.json')) {
    try {
      manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as CaptureManifest;
      if (manifest.format !== 'fragstat-capture' || !Array.isArray(manifest.files)) {
        problems.push('manifest.json is not a fragstat capture manifest');
        manifest = null;
      }
    } catch (err) {
      problems.push(`manifest.json does not parse: ${(err as Error).message}`);
    }
  } else problems.push('no manifest.json: the bundle was not finished');
  const listed = manifest
    ? manifest.files
    : names
        .filter((n) => n !== 'manifest.json.tmp' && statSync(path.join(dir, n)).isFile())
        .map((name) => ({ name, bytes: null as number | null, format: guessFormat(name) }));
  for (const f of listed) {
    let text: string;
    try {
      text = readFileSync(path.join(dir, f.name), 'utf8');
    } catch {
      problems.push(`${f.name} is missing`);
      continue;
    }
    texts[f.name] = text;
    if (f.bytes !== null && Buffer.byteLength(text) !== f.bytes) {
      problems.push(`${f.name} has ${Buffer.byteLength(text)} bytes, the manifest says ${f.bytes}`);
    }
    // A file cut at its bound is complete as far as it goes, but may not parse to the end.
    const cut = 'truncated' in f && f.truncated === true;
    const bad = cut ? null : formatProblem(f.format, text);
    if (bad) problems.push(`${f.name} (${f.format}): ${bad}`);
  }
  return { dir, manifest, complete: manifest !== null && problems.length === 0, problems, texts };
}

function guessFormat(name: string): string {
  if (name.endsWith('.ndjson')) return 'ndjson';
  if (name.endsWith('.json')) return 'json';
  if (name === 'malloc-info.xml') return 'malloc_info';
  if (name === 'jemalloc-stats.txt') return 'jemalloc_stats';
  if (name.endsWith('.prof')) return 'heap_v2';
  return 'text';
}
