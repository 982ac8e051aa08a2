// The streaming heap snapshot parser against JSON.parse of the same text: hand-made snapshots split
// at every character (inside numbers, strings and escapes), and a real snapshot of this process.
import { getHeapSnapshot } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { HeapSnapshotParser, parseHeapSnapshot, type HeapSnapshot } from '../src/profile/heapsnapshot';

interface Parsed {
  snapshot: { meta: { node_fields: string[]; edge_fields: string[] } };
  nodes: number[];
  edges: number[];
  locations: number[];
  strings: string[];
}

/** A small snapshot in V8's layout, with node fields in the given order. */
function handMade(nodeFields: string[], strings: string[]): string {
  const nodeRow = (v: Record<string, number>) => nodeFields.map((f) => v[f] ?? 0);
  const nodes = [
    nodeRow({ type: 9, name: 0, id: 1, self_size: 0, edge_count: 2 }),
    nodeRow({ type: 3, name: 1, id: 3, self_size: 32, edge_count: 1 }),
    nodeRow({ type: 8, name: 2, id: 5, self_size: 5_000_000_000, edge_count: 0 }),
  ];
  const n = nodeFields.length;
  const snapshot = {
    meta: {
      node_fields: nodeFields,
      node_types: nodeFields.map((f) =>
        f === 'type'
          ? [
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
            ]
          : f === 'name'
            ? 'string'
            : 'number',
      ),
      edge_fields: ['type', 'name_or_index', 'to_node'],
      edge_types: [
        ['context', 'element', 'property', 'internal', 'hidden', 'shortcut', 'weak'],
        'string_or_number',
        'node',
      ],
      location_fields: ['object_index', 'script_id', 'line', 'column'],
    },
    node_count: nodes.length,
    edge_count: 3,
  };
  // Written the way V8 writes it: one row a line, the header first, then the arrays.
  return (
    `{"snapshot":${JSON.stringify(snapshot)},\n"nodes":[${nodes.map((r) => r.join(',')).join('\n,')}],\n` +
    `"edges":[1,0,${n}\n,2,3,${2 * n}\n,3,4,${2 * n}],\n"trace_function_infos":[],\n"trace_tree":[],\n` +
    `"samples":[],\n"locations":[${n},7,12,3],\n"strings":[${strings.map((s) => JSON.stringify(s)).join(',\n')}]}\n`
  );
}

function expectSame(parsed: HeapSnapshot, text: string): void {
  const j = JSON.parse(text) as Parsed;
  expect(parsed.nodeCount * parsed.nodeFieldCount).toBe(j.nodes.length);
  const sizeColumn = j.snapshot.meta.node_fields.indexOf('self_size');
  const n = j.snapshot.meta.node_fields.length;
  // Loops, not one expect() per number: a real snapshot has millions.
  const wrong: string[] = [];
  for (let k = 0; k < j.nodes.length; k++) {
    const capped = k % n === sizeColumn ? Math.min(j.nodes[k], 0xffffffff) : j.nodes[k];
    if (parsed.nodes[k] !== capped) wrong.push(`nodes[${k}]`);
    if (k % n === sizeColumn && parsed.selfSizes[(k / n) | 0] !== j.nodes[k]) wrong.push(`selfSizes[${k}]`);
  }
  const same = (name: string, a: ArrayLike<unknown>, b: ArrayLike<unknown>) => {
    if (a.length !== b.length) wrong.push(`${name}.length`);
    for (let k = 0; k < b.length; k++) if (a[k] !== b[k]) wrong.push(`${name}[${k}]`);
  };
  same('edges', parsed.edges, j.edges);
  same('locations', parsed.locations, j.locations);
  same('strings', parsed.strings, j.strings);
  expect(wrong.slice(0, 5)).toEqual([]);
  expect(parsed.textLength).toBe(text.length);
}

const awkward = [
  '',
  'plain',
  'quote " inside',
  'back \\ slash',
  'tab\tnew\nline',
  'é ü \u2028 😀',
  '\u0001\u001f',
  '\\"',
];

describe('heap snapshot parser', () => {
  for (const fields of [
    ['type', 'name', 'id', 'self_size', 'edge_count', 'trace_node_id'],
    ['type', 'name', 'id', 'self_size', 'edge_count', 'trace_node_id', 'detachedness'],
    ['name', 'edge_count', 'type', 'self_size', 'id'],
  ]) {
    it(`reads node fields from the meta (${fields.join(',')}), split at every character`, async () => {
      const text = handMade(fields, ['', 'Map', 'system / JSArrayBufferData', ...awkward]);
      // JSON.stringify escapes only some characters: write \uXXXX escapes too.
      const escaped = text.replace('"plain"', '"pl\\u0061in\\/"');
      expect((JSON.parse(escaped) as Parsed).strings[4]).toBe('plain/');
      for (const t of [text, escaped]) {
        expectSame(await parseHeapSnapshot([t]), t);
        for (let cut = 0; cut <= t.length; cut++) {
          expectSame(await parseHeapSnapshot([t.slice(0, cut), t.slice(cut)]), t);
        }
        // One character a chunk, through an async iterable.
        async function* chars() {
          for (const c of t) yield c;
        }
        expectSame(await parseHeapSnapshot(chars()), t);
      }
      const parsed = await parseHeapSnapshot([text]);
      expect(parsed.nodeTypes[parsed.nodes[parsed.nodeField.type]]).toBe('synthetic');
      expect(parsed.selfSizes[2]).toBe(5_000_000_000);
      expect(parsed.strings[parsed.nodes[parsed.nodeFieldCount + parsed.nodeField.name]]).toBe('Map');
    });
  }

  it('rejects truncated and malformed text', async () => {
    const text = handMade(['type', 'name', 'id', 'self_size', 'edge_count'], ['a', 'b', 'c']);
    await expect(parseHeapSnapshot([text.slice(0, text.length - 10)])).rejects.toThrow(SyntaxError);
    await expect(parseHeapSnapshot([text.replace('"nodes":[', '"nodes":[x')])).rejects.toThrow(SyntaxError);
    await expect(parseHeapSnapshot(['[1,2]'])).rejects.toThrow(SyntaxError);
    const noHeader = text.replace(/^\{"snapshot":.*?,\n"nodes"/s, '{"nodes"');
    expect(noHeader.startsWith('{"nodes"')).toBe(true);
    await expect(parseHeapSnapshot([noHeader])).rejects.toThrow(/header/);
  });

  it('parses a real snapshot of this process as JSON.parse does, in chunks of any size', async () => {
    const keep = { tag: `quote " back \\ tab \t unicode \u00e9 ${Math.random()}`, buf: Buffer.alloc(12345) };
    const stream = getHeapSnapshot();
    stream.setEncoding('utf8');
    const pieces: string[] = [];
    for await (const piece of stream) pieces.push(piece as string);
    const text = pieces.join('');
    const j = JSON.parse(text) as Parsed;
    // V8 writes the string with escapes; the parser must read it back.
    expect(j.strings.some((s) => s.startsWith('quote " back \\ tab \t unicode \u00e9 '))).toBe(true);
    for (const size of [1 << 16, 4093, 997]) {
      const chunks: string[] = [];
      for (let k = 0; k < text.length; k += size) chunks.push(text.slice(k, k + size));
      const parsed = await parseHeapSnapshot(chunks);
      expectSame(parsed, text);
      expect(parsed.meta.node_fields).toEqual(j.snapshot.meta.node_fields);
    }
    // The incremental interface gives the same result.
    const p = new HeapSnapshotParser();
    for (const piece of pieces) p.push(piece);
    expectSame(p.end(), text);
    expect(keep.buf.length).toBe(12345);
  });
});
