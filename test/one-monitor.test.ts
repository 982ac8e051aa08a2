// One monitor per process, however it is started: a `-r` preload runs in every worker thread, and
// each thread has its own fragstat state. The first monitor owns auto-trim, V8 release and capture;
// one started later in another thread only reads, and a warning says so once in that thread.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { root, runNodeAsync } from './helpers';

interface Told {
  threadId: number;
  elsewhere: { threadId: number } | null;
  warnings: string[];
}

const fixture = path.join(root, 'test/fixtures/one-monitor.cjs');

async function run<T>(args: string[]): Promise<T> {
  const r = await runNodeAsync(args);
  if (r.code !== 0) throw new Error(`exited with ${r.code ?? r.signal}\n${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

describe('one monitor per process', () => {
  it('a preload that starts a monitor in every thread: the main thread owns the process, each worker is told', async () => {
    const r = await run<{ main: Omit<Told, 'threadId'>; workers: Told[] }>([
      '-r',
      path.join(root, 'test/fixtures/monitor-preload.cjs'),
      fixture,
      'preload',
    ]);
    expect(r.main.elsewhere).toBeNull();
    expect(r.main.warnings).toEqual([]);
    expect(r.workers).toHaveLength(3);
    for (const w of r.workers) {
      expect(w.elsewhere).toEqual({ threadId: 0 });
      expect(w.warnings).toHaveLength(1);
      expect(w.warnings[0]).toContain(
        `already runs in the main thread of this process; this one, in worker thread ${w.threadId}`,
      );
      expect(w.warnings[0]).toContain('isMainThread');
    }
  });

  it('hands over: a worker is told while the main monitor runs, owns the process once it stops, and gives it back when it exits', async () => {
    const r = await run<{
      main: { elsewhere: unknown; secondElsewhere: unknown };
      told: Told;
      leaver: Told;
      afterLeaver: unknown;
      warnings: string[];
    }>([fixture, 'handover']);
    // Two monitors in one thread share the claim.
    expect(r.main).toEqual({ elsewhere: null, secondElsewhere: null });
    expect(r.told.elsewhere).toEqual({ threadId: 0 });
    expect(r.told.warnings).toHaveLength(1);
    // With the main thread's monitors stopped, a worker's owns the process, and its exit (with
    // the monitor still running) frees it for the main thread again.
    expect(r.leaver.elsewhere).toBeNull();
    expect(r.leaver.warnings).toEqual([]);
    expect(r.afterLeaver).toBeNull();
    expect(r.warnings).toEqual([]);
  });
});
