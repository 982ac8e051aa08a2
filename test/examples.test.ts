// Every example in examples/ runs as written (servers on loopback), and the README or a docs/ page
// shows each one verbatim, so the documented examples are the ones tested here.
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { root, runNode } from './helpers';

const examples = path.join(root, 'examples');

/** Starts a server example, waits for "listening on URL", runs `fn(url, output)`, stops it. */
async function withServer(
  file: string,
  env: Record<string, string>,
  fn: (url: string, out: () => string) => Promise<void>,
) {
  const child = spawn(process.execPath, [path.join(examples, file)], {
    cwd: root,
    env: { ...process.env, PORT: '0', ...env },
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no "listening on" from ${file}:\n${out}`)), 20_000);
      const check = () => {
        const m = /listening on (http:\/\/[\d.:]+)/.exec(out);
        if (m) {
          clearTimeout(t);
          resolve(m[1]);
        }
      };
      child.stdout.on('data', check);
      child.on('exit', (code) => reject(new Error(`${file} exited with ${code}:\n${out}`)));
    });
    await fn(url, () => out);
  } finally {
    child.kill();
  }
}

describe('examples', () => {
  it('the README or a docs/ page shows every example verbatim', () => {
    const readme = [
      'README.md',
      ...readdirSync(path.join(root, 'docs'))
        .filter((f) => f.endsWith('.md'))
        .map((f) => `docs/${f}`),
    ]
      .map((f) => readFileSync(path.join(root, f), 'utf8'))
      .join('\n');
    for (const f of readdirSync(examples, { withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => e.name)) {
      expect(readme, `no page shows examples/${f}`).toContain(
        readFileSync(path.join(examples, f), 'utf8').trim(),
      );
    }
  });

  it('service.js: health, metrics, and a log line per sample', async () => {
    await withServer('service.js', {}, async (url, out) => {
      const health = await (await fetch(`${url}/health/memory`)).json();
      expect(health.allocator).toBe('glibc');
      const metrics = await (await fetch(`${url}/metrics`)).text();
      expect(metrics).toMatch(/^fragstat_rss_bytes\{allocator="glibc"\} \d+$/m);
      // The monitor's first sample is logged when its reading is done (on the thread pool), which
      // may be after both answers: wait for the line.
      const line = () =>
        out()
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l))
          .find((l) => l.msg === 'native heap');
      await expect.poll(line, { timeout: 20_000 }).toBeDefined();
      expect(line().malloc.allocatedBytes).toBeGreaterThan(0);
    });
  });

  it('express.js: health for all, trimming only with the token and rate-limited', async () => {
    await withServer('express.js', { ADMIN_TOKEN: 'secret' }, async (url) => {
      expect((await fetch(`${url}/health/memory`)).status).toBe(200);
      expect((await fetch(`${url}/admin/trim`, { method: 'POST' })).status).toBe(401);
      const auth = { method: 'POST', headers: { authorization: 'Bearer secret' } };
      const ok = await fetch(`${url}/admin/trim`, auth);
      expect(ok.status).toBe(200);
      expect((await ok.json()).supported).toBe(true);
      expect((await fetch(`${url}/admin/trim`, auth)).status).toBe(429);
    });
  });

  it('express.js: without ADMIN_TOKEN nobody may trim, "Bearer undefined" included', async () => {
    await withServer('express.js', {}, async (url) => {
      for (const authorization of ['Bearer undefined', 'Bearer ', 'Bearer']) {
        const res = await fetch(`${url}/admin/trim`, { method: 'POST', headers: { authorization } });
        expect(res.status, authorization).toBe(401);
      }
    });
  });

  it('express.js: a busy PORT is reported as EADDRINUSE, not a TypeError', async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = busy.address() as AddressInfo;
      const r = runNode([path.join(examples, 'express.js')], { env: { PORT: String(port) } });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/EADDRINUSE/);
      expect(r.stderr).not.toMatch(/TypeError/);
    } finally {
      busy.close();
    }
  });

  it('fastify.js: health', async () => {
    await withServer('fastify.js', {}, async (url) => {
      const res = await fetch(`${url}/health/memory`);
      expect(res.status).toBe(200);
      expect((await res.json()).status).toMatch(/^(ok|warn|critical)$/);
    });
  });

  it('opentelemetry.js: exports the gauges and exits', () => {
    const r = runNode([path.join(examples, 'opentelemetry.js')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/name: 'fragstat\.allocated'/);
  });

  it('trim-after-batch.js: reports the free memory and what the trim released', () => {
    const r = runNode(['--expose-gc', path.join(examples, 'trim-after-batch.js')]);
    expect(r.code, r.stderr).toBe(0);
    const free = Number(/glibc: (\d+) MiB free \((\d+)% of the heap\)/.exec(r.stdout)![1]);
    const released = Number(/trim released (\d+) MiB of RSS/.exec(r.stdout)![1]);
    expect(free).toBeGreaterThan(100); // 128 MiB of Buffers freed
    expect(released).toBeGreaterThan(90);
  });
});
