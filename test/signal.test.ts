// trimOnSignal(): an operator's signal trims off the JS thread and reports what it released.
import { describe, expect, it } from 'vitest';
import { trimOnSignal, type TrimResult } from '../src';
import { evalJson, MiB, root, runFixture, runNode } from './helpers';
import path from 'node:path';

interface SignalRun {
  listenersAtStart: number;
  listenersInstalled: number;
  listenersAfterDispose: number;
  freedBytes: number;
  results: TrimResult[];
  lines: string[];
  trimLog: number;
}

describe('trimOnSignal()', () => {
  it('trims when the signal arrives and reports the release', () => {
    const r = runFixture<SignalRun>('signal.cjs');
    expect(r.listenersAtStart).toBe(0); // never installed by default
    expect(r.listenersInstalled).toBe(1);
    expect(r.listenersAfterDispose).toBe(0);
    expect(r.results).toHaveLength(1);
    expect(r.trimLog).toBe(1);
    const t = r.results[0];
    expect(t.supported).toBe(true);
    // 112 MiB of 64 KiB Buffers were freed in holes; the trim returns most of them.
    expect(r.freedBytes).toBeGreaterThan(100 * MiB);
    expect(t.releasedBytes!).toBeGreaterThan(r.freedBytes / 2);
    expect(r.lines[0]).toBe(
      `fragstat: SIGUSR2: trim released ${(t.releasedBytes! / MiB).toFixed(1)} MiB ` +
        `(RSS ${(t.rssBeforeBytes! / MiB).toFixed(1)} -> ${(t.rssAfterBytes! / MiB).toFixed(1)} MiB) in ${t.durationMs!.toFixed(1)} ms`,
    );
  });

  it("after the disposer the signal's default action is back", () => {
    const r = runNode(['--expose-gc', path.join(root, 'test/fixtures/signal.cjs')], {
      env: { AFTER: 'dispose' },
    });
    expect(r.signal).toBe('SIGUSR2');
    expect(r.stdout).not.toMatch(/still alive/);
  });

  it('refuses signals Node or the process needs, and bad options', () => {
    let err: (Error & { code?: string }) | null = null;
    try {
      trimOnSignal({ signal: 'SIGUSR1' });
    } catch (e) {
      err = e as Error;
    }
    expect(err).toBeInstanceOf(RangeError);
    expect(err?.code).toBe('ERR_FRAGSTAT_SIGNAL_RESERVED');
    expect(err?.message).toMatch(/received "SIGUSR1": Node's inspector starts on SIGUSR1/);
    for (const signal of ['SIGTERM', 'SIGINT', 'SIGKILL', 'SIGSEGV'] as const) {
      expect(() => trimOnSignal({ signal })).toThrow(RangeError);
    }
    expect(() => trimOnSignal({ signal: 'SIGNOPE' as never })).toThrow(
      /Expected a signal name such as "SIGUSR2" for options.signal but received a string \("SIGNOPE"\)/,
    );
    expect(() => trimOnSignal({ onTrim: 1 as never })).toThrow(/Expected a function for options.onTrim/);
    expect(() => trimOnSignal({ log: 'yes' as never })).toThrow(/options.log/);
    expect(process.listenerCount('SIGUSR2')).toBe(0);
  });

  it('refuses to install in a worker thread, where no signal is delivered', () => {
    const r = evalJson<{ code: string }>(`
      const { Worker } = require('node:worker_threads');
      const w = new Worker(\`const { parentPort } = require('node:worker_threads');
        try { require(\${JSON.stringify(${JSON.stringify(root)})}).trimOnSignal(); parentPort.postMessage(null); }
        catch (e) { parentPort.postMessage(e.code); }\`, { eval: true });
      w.on('message', (code) => { process.stdout.write(JSON.stringify({ code })); w.terminate(); });`);
    expect(r.code).toBe('ERR_FRAGSTAT_SIGNAL_IN_WORKER');
  });
});
