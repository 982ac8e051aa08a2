// `fragstat run` at its default interval on a service that leaks JS objects: the live line gives
// the verdict within three minutes of load, and the summary at the end, doctor FILE and report
// --json on its recording give the same. About a minute and a half.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { root } from './helpers';

const dir = mkdtempSync(path.join(os.tmpdir(), 'fragstat-live-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const bin = path.join(root, 'bin/fragstat.js');

describe('fragstat run at its default interval', () => {
  it('prints js-heap-growth live within three minutes, and the same at the end, in doctor and report --json', async () => {
    const out = path.join(dir, 'js.ndjson');
    const child = spawn(
      process.execPath,
      [bin, 'run', '--out', out, '--', process.execPath, path.join(root, 'test/fixtures/leak-app.cjs')],
      { cwd: root, env: { ...process.env, LEAK: 'js' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    const started = Date.now();
    // The first verdict line that is not insufficient evidence, or three minutes.
    const verdictLine = await new Promise<string | null>((resolve) => {
      const deadline = setTimeout(() => resolve(null), 180_000);
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        const m = /^\[fragstat\] verdict after [\d.]+ min: (?!insufficient-evidence).*$/m.exec(stderr);
        if (m) {
          clearTimeout(deadline);
          resolve(m[0]);
        }
      });
    });
    const afterMs = Date.now() - started;
    child.kill('SIGTERM');
    const code = await new Promise((resolve) => child.on('close', (c, s) => resolve(c ?? s)));
    expect(verdictLine, stderr).toMatch(/: js-heap-growth \((low|medium|high) confidence\): JS heap growth/);
    expect(afterMs).toBeLessThan(180_000);
    expect(code).toBe(0); // the application handles SIGTERM itself and exits 0
    expect(stderr).toMatch(/\[fragstat\] at the end:\n {2}verdict: js-heap-growth: /);
    const doctor = spawn(process.execPath, [bin, 'doctor', out], { cwd: root });
    let text = '';
    doctor.stdout.on('data', (d: Buffer) => (text += d.toString()));
    await new Promise((resolve) => doctor.on('close', resolve));
    expect(text).toMatch(/^verdict: js-heap-growth: /);
    const report = spawn(process.execPath, [bin, 'report', out, '--json'], { cwd: root });
    let json = '';
    report.stdout.on('data', (d: Buffer) => (json += d.toString()));
    await new Promise((resolve) => report.on('close', resolve));
    expect(JSON.parse(json).verdict.kind).toBe('js-heap-growth');
    expect(readFileSync(out, 'utf8')).toMatch(/"final":true/);
  }, 240_000);
});
