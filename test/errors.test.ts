// Bad input throws TypeError naming the option; nothing a caller does aborts the process.
import { describe, expect, it } from 'vitest';
import * as fragstat from '..';
import { runFixture, runNode } from './helpers';

describe('option validation', () => {
  const bad: [unknown, RegExp][] = [
    [null, /Expected an object or undefined for snapshot\(options\) but received null/],
    [42, /Expected an object or undefined for snapshot\(options\) but received number \(42\)/],
    ['detail', /received a string \("detail"\)/],
    [[true], /received an array/],
    [{ detail: 'yes' }, /Expected a boolean for options.detail but received a string \("yes"\)/],
    [{ detail: 1 }, /Expected a boolean for options.detail but received number \(1\)/],
    [{ detial: true }, /Unknown option "detial" for snapshot\(options\); known: detail/],
  ];

  for (const [options, message] of bad) {
    it(`snapshot(${JSON.stringify(options)}) throws a TypeError`, () => {
      expect(() => fragstat.snapshot(options as never)).toThrow(TypeError);
      expect(() => fragstat.snapshot(options as never)).toThrow(message);
    });
  }

  it('snapshotAsync rejects (never throws synchronously) with the same TypeError', async () => {
    const p = fragstat.snapshotAsync({ detail: 'yes' } as never);
    await expect(p).rejects.toThrow(TypeError);
    await expect(fragstat.snapshotAsync({ extra: 1 } as never)).rejects.toThrow(/Unknown option "extra"/);
  });

  it('trim and trimSync take no arguments', async () => {
    expect(() => (fragstat.trimSync as (x: unknown) => unknown)({ force: true })).toThrow(
      /trimSync\(\) takes no arguments but received an object/,
    );
    await expect((fragstat.trim as (x: unknown) => Promise<unknown>)(1)).rejects.toThrow(TypeError);
  });

  it('accepts undefined and empty options', () => {
    expect(fragstat.snapshot(undefined).allocator).toBe('glibc');
    expect(fragstat.snapshot({}).detail).toBeNull();
    expect(fragstat.snapshot({ detail: false }).detail).toBeNull();
    expect(fragstat.snapshot({ detail: undefined }).largestFreeBytes).toBeNull();
  });
});

describe('snapshots and results are plain data', () => {
  it('survives JSON and structuredClone unchanged', async () => {
    const s = await fragstat.snapshotAsync({ detail: true });
    expect(JSON.parse(JSON.stringify(s))).toEqual(s);
    expect(structuredClone(s)).toEqual(s);
    const t = await fragstat.trim();
    expect(JSON.parse(JSON.stringify(t))).toEqual(t);
  });

  it('allocator() returns a fresh copy each time', () => {
    const a = fragstat.allocator();
    a.rawFields.push('mutated');
    (a as { name: string }).name = 'mutated';
    expect(fragstat.allocator().name).toBe('glibc');
    expect(fragstat.allocator().rawFields).not.toContain('mutated');
  });

  it('a sync snapshot is not changed by the next one', () => {
    const a = fragstat.snapshot();
    const before = a.allocatedBytes;
    const keep = Buffer.alloc(64 * 1024 * 1024, 1);
    const b = fragstat.snapshot();
    // a is a copy: taking b left it as it was.
    expect(a.allocatedBytes).toBe(before);
    // b saw the 64 MiB. V8 may free earlier tests' backing stores on a background thread
    // meanwhile (more than 1 MiB of them under load), so only half of it is asked for.
    expect(b.allocatedBytes! - before!).toBeGreaterThanOrEqual(keep.length / 2);
  });
});

describe('the internal binding refuses what would crash it', () => {
  it('throws on a missing or wrong target array instead of writing past it', () => {
    const r = runNode([
      '-e',
      `const b = require('node-gyp-build')(require('node:path').join(process.cwd(), 'native'));
       const errors = [];
       const attempt = (fn) => { try { fn(); errors.push('no error'); } catch (e) { errors.push(e.constructor.name); } };
       attempt(() => b.snapshot(false));
       attempt(() => b.trimSync());
       attempt(() => b.bind(new Float64Array(2), new Float64Array(8)));
       attempt(() => b.bind(new Float64Array(64), new Uint8Array(80)));
       attempt(() => b.snapshotAsync(false, new Uint8Array(400)));
       attempt(() => b.trim({}));
       process.stdout.write(JSON.stringify(errors));`,
    ]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([
      'Error',
      'Error',
      'TypeError',
      'TypeError',
      'TypeError',
      'TypeError',
    ]);
  });

  it('throws a TypeError, never crashes, when its arrays are detached before or during a call', () => {
    const r = runFixture<Record<string, string>>('detach.cjs', { nodeArgs: [] });
    const refused =
      "TypeError: fragstat internal: expected a Float64Array of the binding's layout (not detached)";
    expect(r).toEqual({
      snapshot: refused,
      trimSync: refused,
      snapshotAsync: refused,
      trim: refused,
      detachedArgument: refused,
    });
  });
});
