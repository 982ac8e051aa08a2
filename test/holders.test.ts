// Who holds the native memory, in real processes under glibc: a service that leaks Buffers into a
// Map and one that leaks unended gzip streams into a Set. The top holder must be that Map or Set,
// with bytes within 20% of the growth of fragstat's own allocatedBytes across the leak.
import { getHeapSnapshot } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { allocator, diffHolders, holders, holdersFromSnapshot, type Holders } from '../src';
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

/** A snapshot in V8's layout from a list of nodes and edges (by node index). */
function tinySnapshot(
  nodes: Array<[type: string, name: string, selfSize: number]>,
  edges: Array<[from: number, type: string, nameOrIndex: string | number, to: number]>,
): string {
  const nodeTypes = [
    'hidden',
    'array',
    'string',
    'object',
    'code',
    'closure',
    'regexp',
    'number',
    'native',
    'synthetic',
  ];
  const edgeTypes = ['context', 'element', 'property', 'internal', 'hidden', 'shortcut', 'weak'];
  const strings: string[] = [];
  const str = (x: string) => (strings.includes(x) ? strings.indexOf(x) : strings.push(x) - 1);
  const fields = ['type', 'name', 'id', 'self_size', 'edge_count', 'trace_node_id', 'detachedness'];
  const nodeRows = nodes.map(([type, name, size], i) => [
    nodeTypes.indexOf(type),
    str(name),
    i * 2 + 1,
    size,
    edges.filter((e) => e[0] === i).length,
    0,
    0,
  ]);
  const edgeRows = [...edges]
    .sort((a, b) => a[0] - b[0])
    .map(([, type, name, to]) => [
      edgeTypes.indexOf(type),
      typeof name === 'number' ? name : str(name),
      to * fields.length,
    ]);
  return JSON.stringify({
    snapshot: {
      meta: {
        node_fields: fields,
        node_types: [nodeTypes, 'string', 'number', 'number', 'number', 'number', 'number'],
        edge_fields: ['type', 'name_or_index', 'to_node'],
        edge_types: [edgeTypes, 'string_or_number', 'node'],
        location_fields: ['object_index', 'script_id', 'line', 'column'],
      },
      node_count: nodes.length,
      edge_count: edges.length,
    },
    nodes: nodeRows.flat(),
    edges: edgeRows.flat(),
    locations: [],
    strings,
  });
}

describe('holdersFromSnapshot', () => {
  it('attributes native bytes to the dominating container, ignoring weak edges and cleanup queues', async () => {
    const nodes: Array<[string, string, number]> = [
      ['synthetic', '', 0], // 0 root
      ['synthetic', '(GC roots)', 0], // 1
      ['object', 'system / Context', 40], // 2
      ['object', 'Map', 32], // 3
      ['array', '', 64], // 4 the Map's table
      ['object', 'Buffer', 96], // 5
      ['object', 'ArrayBuffer', 88], // 6
      ['native', 'system / JSArrayBufferData', 1000], // 7
      ['object', 'Object', 24], // 8 refers to the Buffer weakly
      ['synthetic', 'Node / ZlibStream', 100], // 9
      ['native', 'Node / zlib_memory', 5000], // 10
      ['object', 'Zlib', 56], // 11 the wrapper
      ['object', 'Gzip', 200], // 12 the stream
      ['native', 'Node / CleanupQueue', 50], // 13
      ['object', 'Set', 32], // 14
      ['array', '', 64], // 15 the Set's table
      ['native', 'system / JSArrayBufferData', 7], // 16 only weakly reachable
      ['object', 'ArrayBuffer', 88], // 17
      ['object', 'Buffer', 96], // 18 held directly by a closure variable
      ['object', 'ArrayBuffer', 88], // 19
      ['native', 'system / JSArrayBufferData', 300], // 20
    ];
    const edges: Array<[number, string, string | number, number]> = [
      [0, 'element', 1, 1],
      [0, 'element', 2, 13],
      [1, 'element', 1, 2],
      [1, 'element', 2, 8],
      [2, 'context', 'cache', 3],
      [2, 'context', 'sessions', 14],
      [3, 'internal', 'table', 4],
      [4, 'element', 0, 5],
      [5, 'internal', 'buffer', 6],
      [6, 'internal', 'backing_store', 7],
      [8, 'weak', 'target', 5],
      [8, 'weak', 'other', 17],
      [9, 'internal', 'zlib_memory', 10],
      [9, 'internal', 'native_to_javascript', 11],
      [11, 'internal', 'javascript_to_native', 9],
      [11, 'property', 'owner', 12],
      [12, 'property', '_handle', 11],
      [13, 'element', 1, 9],
      [14, 'internal', 'table', 15],
      [15, 'element', 0, 12],
      [17, 'internal', 'backing_store', 16],
      [2, 'context', 'single', 18],
      [18, 'internal', 'buffer', 19],
      [19, 'internal', 'backing_store', 20],
    ];
    const h = await holdersFromSnapshot([tinySnapshot(nodes, edges)]);
    expect(h.nativeBytes).toBe(1000 + 100 + 5000 + 50 + 300);
    expectAccounted(h);
    const byHolder = Object.fromEntries(h.groups.map((g) => [g.holder ?? g.key, g]));
    expect(byHolder['Set `sessions`']).toMatchObject({ kind: 'Gzip (ZlibStream)', count: 1, bytes: 5100 });
    expect(byHolder['Map `cache`']).toMatchObject({ kind: 'Buffer', count: 1, bytes: 1000 });
    expect(byHolder['kind:CleanupQueue']).toMatchObject({ holder: null, bytes: 50 });
    expect(byHolder['Buffer `single`']).toMatchObject({ kind: 'Buffer', count: 1, bytes: 300 });
    expect(h.groups[0].holder).toBe('Set `sessions`');
    expect(byHolder['Map `cache`'].path).toEqual([
      'scope',
      'variable `cache` → Map',
      '(table) → (internal)',
      '[0] → Buffer',
      '(buffer) → ArrayBuffer',
      '(backing_store) → system / JSArrayBufferData',
    ]);

    // Held by the roots rather than the Set, the stream has no JS holder: grouped by its kind.
    const rooted = edges.map((e): (typeof edges)[number] =>
      e[2] === 'sessions' ? [1, 'element', 3, 12] : e,
    );
    const k = await holdersFromSnapshot([tinySnapshot(nodes, rooted)]);
    expect(k.groups[0]).toMatchObject({ key: 'kind:Gzip (ZlibStream)', holder: null, count: 1, bytes: 5100 });
    expect(k.groups[0].description).toMatch(/held by no JS container: 1 Gzip \(ZlibStream\), 5\.0 KiB/);
  });

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
    await expect(holders({ directory: 1 } as never)).rejects.toThrow(
      /Expected a string for options.directory/,
    );
    await expect(holders({ pathSteps: 0 })).rejects.toThrow(RangeError);
  });
});
