// Helpers shared by the benchmarks.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import os from 'node:os';

export const require = createRequire(import.meta.url);
// FRAG names another build of the package to measure (default: this checkout).
export const fragstat = require(process.env.FRAG || '..');
export const MiB = 1024 * 1024;
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * The environment of a child that runs under allocator `name` (glibc: no preload), or null when
 * that allocator's library is not installed (said on stderr).
 */
export function allocatorEnv(name) {
  const env = { ...process.env };
  delete env.LD_PRELOAD;
  if (name === 'glibc') return env;
  const lib = require('../dist/read/libraries.js').findLibrary(name);
  if (lib === null) {
    console.error(`${name}: library not found, skipped`);
    return null;
  }
  env.LD_PRELOAD = lib;
  return env;
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Collect until the allocator's figures stop moving (V8 frees backing stores after a GC). */
export async function settle() {
  if (typeof globalThis.gc !== 'function') throw new Error('run with node --expose-gc');
  let last = -1;
  for (let i = 0; i < 40; i++) {
    globalThis.gc();
    await sleep(30);
    const s = fragstat.snapshot();
    const now = s.allocatedBytes ?? s.rssBytes;
    if (now === last) return;
    last = now;
  }
}

/** Allocates `count` Buffers of `size` bytes and frees every other one: count/2 free chunks. */
export function fragment(count, size) {
  const bufs = new Array(count);
  for (let i = 0; i < count; i++) bufs[i] = Buffer.alloc(size, 1);
  for (let i = 1; i < count; i += 2) bufs[i] = null;
  return bufs;
}

export function machine() {
  const info = fragstat.allocator();
  return (
    `${os.cpus().length} CPUs (${os.cpus()[0]?.model.trim()}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ` +
    `Linux ${os.release()}, node ${process.version}, ${info.name} ${info.version ?? ''}`.trim()
  );
}

/** Prints rows (arrays of cells) as an aligned Markdown table. */
export function table(header, rows) {
  const cells = [header, ...rows].map((r) => r.map(String));
  const w = header.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  const line = (r) => `| ${r.map((c, i) => c.padEnd(w[i])).join(' | ')} |`;
  return [line(cells[0]), `| ${w.map((n) => '-'.repeat(n)).join(' | ')} |`, ...cells.slice(1).map(line)].join(
    '\n',
  );
}

/** The JSON body the HTTP benchmarks post (bench/http-service.cjs answers it gzipped). */
export const jsonBody = JSON.stringify({
  items: Array.from({ length: 200 }, (_, i) => ({ id: i, name: `item ${i}`, tags: ['a', 'b'] })),
});

/**
 * Starts `node ...args` (a service that prints "listening on URL"), loads it with autocannon
 * (POSTs of jsonBody), stops it, and returns autocannon's result.
 */
export async function driveJsonService(args, env, { connections, duration }) {
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise((resolve) =>
    child.stdout.on('data', (d) => resolve(/listening on (\S+)/.exec(String(d))[1])),
  );
  const r = await require('autocannon')({
    url,
    method: 'POST',
    body: jsonBody,
    headers: { 'content-type': 'application/json' },
    connections,
    duration,
  });
  child.kill();
  await new Promise((resolve) => child.on('close', resolve));
  return r;
}
