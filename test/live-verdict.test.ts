// The verdict on a service that leaks, live and on every in-process surface, within the minutes
// the README promises: a monitor started with defaults in code, read through monitor.verdict(),
// health() and Prometheus. About a minute and a half; test/live-run.test.ts does the same for
// `fragstat run`.
import { describe, expect, it } from 'vitest';
import { runFixtureAsync } from './helpers';

describe('a monitor started with defaults', () => {
  it('calls a native leak native-growth on every in-process surface within five minutes', async () => {
    const out = await runFixtureAsync<{
      afterMs: number;
      monitor: { kind: string; confidence: string };
      health: { kind: string } | null;
      prometheus: string[];
    }>('live-verdict.cjs', { env: { LEAK: 'native' }, timeoutMs: 330_000 });
    expect(out.monitor.kind, JSON.stringify(out)).toBe('native-growth');
    expect(out.health?.kind).toBe('native-growth');
    expect(out.prometheus).toEqual(['native-growth']);
    expect(out.afterMs).toBeLessThan(300_000);
  }, 340_000);
});
