// toLogFields(): a flat object that pino and winston print as plain JSON numbers.
import { Writable } from 'node:stream';
import pino from 'pino';
import winston from 'winston';
import { describe, expect, it } from 'vitest';
import * as fragstat from '..';

function sink(): { stream: Writable; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      cb();
    },
  });
  return { stream, lines };
}

describe('toLogFields', () => {
  it('flattens a snapshot: numbers stay numbers, ratios rounded, one summary line', () => {
    const s = fragstat.snapshot();
    const f = fragstat.toLogFields(s);
    expect(f.rssBytes).toBe(s.rssBytes);
    expect(f.allocatedBytes).toBe(s.allocatedBytes);
    expect(f.fragmentationRatio).toBeCloseTo(s.ratios.fragmentation!, 4);
    expect(f.summary).toMatch(/^glibc rss \d+ MiB, allocated [\d.]+ MiB, free [\d.]+ MiB \(\d+% of heap\)$/);
    for (const v of Object.values(f)) expect(typeof v === 'object' && v !== null).toBe(false);
    expect(() => fragstat.toLogFields({} as fragstat.Snapshot)).toThrow(TypeError);
  });

  it('adds RSS by owner and the verdict when given', () => {
    const s = fragstat.snapshot();
    const b = fragstat.breakdown();
    const v = fragstat.verdict([s], { minSamples: 2 });
    const f = fragstat.toLogFields(s, { breakdown: b, verdict: v });
    expect(f.rssParts).toEqual(b.parts);
    expect(f.verdict).toBe('insufficient-evidence');
    expect(f.summary).toMatch(/; insufficient-evidence$/);
    expect(JSON.parse(JSON.stringify(f))).toEqual(f);
    expect(() => fragstat.toLogFields(s, { breakdown: 1 } as never)).toThrow(TypeError);
    expect(() => fragstat.toLogFields(s, { other: 1 } as never)).toThrow(/Unknown option/);
  });

  it('prints well through pino', () => {
    const { stream, lines } = sink();
    const log = pino(stream);
    const s = fragstat.snapshot();
    log.info({ malloc: fragstat.toLogFields(s) }, 'native heap');
    const line = JSON.parse(lines[0]);
    expect(line.msg).toBe('native heap');
    expect(line.malloc.allocatedBytes).toBe(s.allocatedBytes);
    expect(line.malloc.allocator).toBe('glibc');
  });

  it('prints well through winston', () => {
    const { stream, lines } = sink();
    const log = winston.createLogger({
      format: winston.format.json(),
      transports: [new winston.transports.Stream({ stream })],
    });
    const s = fragstat.snapshot();
    log.info('native heap', fragstat.toLogFields(s));
    const line = JSON.parse(lines[0]);
    expect(line.message).toBe('native heap');
    expect(line.freeBytes).toBe(s.freeBytes);
    expect(line.summary).toMatch(/^glibc rss/);
  });
});
