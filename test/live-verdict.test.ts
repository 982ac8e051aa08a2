// The verdict on a service that leaks, live and on every in-process surface, within the minutes
// the README promises: a monitor started with defaults in code, read through monitor.verdict(),
// health() and Prometheus. About a minute and a half; test/live-run.test.ts does the same for
// `fragstat run`, in parallel.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { root } from './helpers';

/** Runs a fixture without blocking this worker (a blocked worker misses vitest's own messages). */
function fixture(
  name: string,
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--expose-gc', path.join(root, 'test/fixtures', name)], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

describe('a monitor started with defaults', () => {
  it('calls a native leak native-growth on every in-process surface within five minutes', async () => {
    const r = await fixture('live-verdict.cjs', { LEAK: 'native' });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {
      afterMs: number;
      monitor: { kind: string; confidence: string };
      health: { kind: string } | null;
      prometheus: string[];
    };
    expect(out.monitor.kind, r.stdout).toBe('native-growth');
    expect(out.health?.kind).toBe('native-growth');
    expect(out.prometheus).toEqual(['native-growth']);
    expect(out.afterMs).toBeLessThan(300_000);
  }, 330_000);
});
