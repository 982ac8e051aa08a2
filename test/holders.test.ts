// Who holds the native memory, in real processes under glibc: a service that leaks Buffers into a
// Map and one that leaks unended gzip streams into a Set. The top holder must be that Map or Set,
// with bytes within 20% of the growth of fragstat's own allocatedBytes across the leak.
import { getHeapSnapshot } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { allocator, diffHolders, holdersFromSnapshot, type Holders } from '../src';
import { runFixtureAsync } from './helpers';

const glibc = allocator().name === 'glibc';
if (!glibc) console.warn(`skipping the holders goal tests: the allocator is ${allocator().name}, not glibc`);

interface MapRun {
  count: number;
  before: number;
  after: number;
  firstBytes: number;
  secondBytes: number;
  first: Holders;
  second: Holders;
}

interface ZlibRun {
  count: number;
  before: number;
  after: number;
  holders: Holders;
}

/** Every native byte is in exactly one group (or in otherBytes). */
function expectAccounted(h: Holders): void {
  const grouped = h.groups.reduce((sum, g) => sum + g.bytes, 0) + h.otherBytes;
  expect(grouped).toBe(h.nativeBytes);
  for (const g of h.groups) {
    expect(g.parts.reduce((sum, p) => sum + p.bytes, 0)).toBe(g.bytes);
    expect(g.path.length).toBeGreaterThan(0);
  }
  expect(h.groups.map((g) => g.bytes)).toEqual([...h.groups.map((g) => g.bytes)].sort((a, b) => b - a));
  expect(JSON.parse(JSON.stringify(h))).toEqual(h);
}

describe.runIf(glibc)('holders in a real process (glibc)', () => {
  it('names the Map a service leaks Buffers into, with the bytes malloc saw it keep', async () => {
    const r = await runFixtureAsync<MapRun>('holders-map.cjs', {
      env: { COUNT: '2400' },
      timeoutMs: 120_000,
    });
    const growth = r.after - r.before;
    expect(growth).toBeGreaterThan(r.firstBytes + r.secondBytes - 1); // tens of MiB, malloc'd
    const top = r.second.groups[0];
    expect(top.holder).toBe('Map `thumbs`');
    expect(top.location).toMatch(/holders-map\.cjs:\d+:\d+$/);
    expect(top.kind).toBe('Buffer');
    expect(top.count).toBe(r.count);
    // The backing stores are the Buffers' lengths: what the fixture allocated.
    expect(top.bytes).toBe(r.firstBytes + r.secondBytes);
    expect(top.bytes).toBeGreaterThan(growth * 0.8);
    expect(top.bytes).toBeLessThan(growth * 1.2);
    expect(top.path.join(' ')).toMatch(/variable `thumbs` → Map/);
    expectAccounted(r.second);
    expectAccounted(r.first);
    expect((r.second as Holders & { pauseMs: number }).pauseMs).toBeGreaterThan(0);

    // The diff between the reading halfway and the last names the Map, grown by the second half.
    const diff = diffHolders(r.first, r.second);
    const grew = diff.changes[0];
    expect(grew.key).toBe(top.key);
    expect(grew.countDelta).toBe(r.count / 2);
    expect(grew.bytesDelta).toBe(r.secondBytes);
    expect(diff.nativeBytesDelta).toBeGreaterThan(r.secondBytes * 0.95);
    expect(diff.elapsedMs).toBeGreaterThanOrEqual(0);
    expect(diff.changes.slice(1).every((c) => Math.abs(c.bytesDelta) < r.secondBytes / 100)).toBe(true);
  });

  it('names the Set that keeps unended gzip streams, with the bytes zlib allocated', async () => {
    const r = await runFixtureAsync<ZlibRun>('holders-zlib.cjs', {
      env: { COUNT: '400' },
      timeoutMs: 120_000,
    });
    const growth = r.after - r.before;
    const top = r.holders.groups[0];
    expect(top.holder).toBe('Set `sessions`');
    expect(top.location).toMatch(/holders-zlib\.cjs:\d+:\d+$/);
    expect(top.kind).toBe('Gzip (ZlibStream)');
    expect(top.count).toBe(r.count);
    expect(top.bytes).toBeGreaterThan(growth * 0.8);
    expect(top.bytes).toBeLessThan(growth * 1.2);
    expect(top.path.join(' ')).toMatch(/→ Gzip \._handle → Zlib/);
    expectAccounted(r.holders);
  });
});

describe('holdersFromSnapshot', () => {
  it('reads a snapshot stream of this process: a Buffer pool slab counts once', async () => {
    const pooled = Array.from({ length: 200 }, (_, i) => Buffer.from(`small ${i}`)); // one 8 KiB slab
    const big = { kept: Buffer.alloc(3 * 1024 * 1024, 1) };
    const stream = getHeapSnapshot();
    stream.setEncoding('utf8');
    const h = await holdersFromSnapshot(stream as AsyncIterable<string>, { top: 1000 });
    expectAccounted(h);
    expect(h.snapshotBytes).toBeGreaterThan(h.nodeCount);
    const kept = h.groups.find((g) =>
      g.parts.some((p) => p.kind === 'Buffer' && p.bytes === big.kept.length),
    );
    expect(kept?.holder).toMatch(/^Object/);
    // The slab is one ArrayBuffer however many Buffers view it: no group counts 200 of them.
    expect(h.groups.some((g) => g.parts.some((p) => p.count >= pooled.length))).toBe(false);
    expect(pooled.length + big.kept.length).toBeGreaterThan(0);
  });

  it('rejects what is not a snapshot or not an option', async () => {
    await expect(holdersFromSnapshot(42 as never)).rejects.toThrow(TypeError);
    await expect(holdersFromSnapshot([[1, 2]] as never)).rejects.toThrow(TypeError);
    await expect(holdersFromSnapshot(['{}'], { top: 0 })).rejects.toThrow(RangeError);
    await expect(holdersFromSnapshot(['{}'], { depth: 1 } as never)).rejects.toThrow(
      /Unknown option "depth"/,
    );
    await expect(holdersFromSnapshot(['{"snapshot":'])).rejects.toThrow(SyntaxError);
    expect(() => diffHolders(null as never, null as never)).toThrow(TypeError);
  });
});
