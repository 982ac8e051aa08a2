// A streaming parser of V8's .heapsnapshot JSON. It takes the text in chunks of any size (a chunk may
// end inside a number, a string or an escape) and keeps nodes, edges and locations in typed arrays
// and the strings in one array: memory is a few bytes per node and edge, never the text itself.
// Field offsets come from the snapshot's own meta (V8 versions differ: `detachedness` came later).
// Pure: no N-API, no fs, no inspector.

/** The `snapshot.meta` object of a heap snapshot: field names and the names of type enums. */
export interface HeapSnapshotMeta {
  node_fields: string[];
  node_types: unknown[];
  edge_fields: string[];
  edge_types: unknown[];
  location_fields?: string[];
  [key: string]: unknown;
}

/** A parsed heap snapshot in compact form: one row of `nodeFieldCount` numbers per node, and so on. */
export interface HeapSnapshot {
  meta: HeapSnapshotMeta;
  nodeCount: number;
  edgeCount: number;
  nodeFieldCount: number;
  edgeFieldCount: number;
  /** Node rows; the self_size column is capped at 2^32-1 here: use `selfSizes` for sizes. */
  nodes: Uint32Array;
  /** Each node's self_size in bytes (a backing store may exceed 4 GiB). */
  selfSizes: Float64Array;
  /** Edge rows; to_node is an offset into `nodes` (node index times nodeFieldCount), as in the file. */
  edges: Uint32Array;
  /** The location rows (object_index, script_id, line, column), empty if the snapshot has none. */
  locations: Uint32Array;
  locationFieldCount: number;
  strings: string[];
  /** Names of node types and edge types, indexed by the type column. */
  nodeTypes: string[];
  edgeTypes: string[];
  /** Column offsets within a node row / edge row / location row, from the meta. */
  nodeField: { type: number; name: number; id: number; selfSize: number; edgeCount: number };
  edgeField: { type: number; nameOrIndex: number; toNode: number };
  locationField: { objectIndex: number; scriptId: number; line: number; column: number };
  /** Characters of snapshot text parsed. */
  textLength: number;
}

/** A growable array of doubles. */
class F64 {
  data: Float64Array;
  length = 0;
  constructor(capacity: number) {
    this.data = new Float64Array(Math.max(16, capacity));
  }
  push(v: number): void {
    if (this.length === this.data.length) {
      const next = new Float64Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }
  done(): Float64Array {
    return this.data.length === this.length ? this.data : this.data.slice(0, this.length);
  }
}

/** A growable typed array of 32-bit unsigned integers. */
class U32 {
  data: Uint32Array;
  length = 0;
  constructor(capacity: number) {
    this.data = new Uint32Array(Math.max(16, capacity));
  }
  push(v: number): void {
    if (this.length === this.data.length) {
      const next = new Uint32Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }
  done(): Uint32Array {
    return this.data.length === this.length ? this.data : this.data.slice(0, this.length);
  }
}

const enum Mode {
  Key, // between top-level keys
  Value, // after a key's colon, before its value
  Capture, // inside a value kept as text (the small "snapshot" header) or skipped
  Numbers, // inside an array of integers
  Strings, // inside an array of strings
  Done,
}

const QUOTE = 34;
const BACKSLASH = 92;
const COMMA = 44;
const COLON = 58;
const MINUS = 45;

function isSpace(c: number): boolean {
  return c === 32 || c === 10 || c === 13 || c === 9;
}

/** Incremental parser: feed chunks with push(), then call end() for the HeapSnapshot. */
export class HeapSnapshotParser {
  private mode = Mode.Key;
  private key = '';
  private inKeyString = false;
  private keyText = '';
  // Capture state
  private capture: string[] | null = null;
  private depth = 0;
  private inString = false;
  private escaped = false;
  private started = false;
  // Numbers state
  private target: U32 | null = null;
  private number = -1; // -1: not inside a number
  private negative = false;
  private column = 0;
  private sizeColumn = -1;
  private fieldCount = 1;
  private sizes = new F64(16);
  // Strings state
  private stringParts: string[] = [];
  private stringHasEscape = false;
  // Results
  private meta: HeapSnapshotMeta | null = null;
  private nodeCountHint = 0;
  private edgeCountHint = 0;
  private nodes: U32 | null = null;
  private edges: U32 | null = null;
  private locations = new U32(16);
  private strings: string[] = [];
  private textLength = 0;
  private seenOpen = false;

  /** Parses one more chunk of snapshot text. */
  push(chunk: string): void {
    this.textLength += chunk.length;
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      switch (this.mode) {
        case Mode.Key:
          i = this.scanKey(chunk, i);
          break;
        case Mode.Value:
          i = this.startValue(chunk, i);
          break;
        case Mode.Capture:
          i = this.scanCapture(chunk, i);
          break;
        case Mode.Numbers:
          i = this.scanNumbers(chunk, i);
          break;
        case Mode.Strings:
          i = this.scanStrings(chunk, i);
          break;
        case Mode.Done:
          for (; i < n; i++) {
            if (!isSpace(chunk.charCodeAt(i)))
              throw new SyntaxError('Unexpected text after the heap snapshot');
          }
          break;
      }
    }
  }

  private scanKey(s: string, i: number): number {
    const n = s.length;
    if (this.inKeyString) {
      const end = s.indexOf('"', i);
      if (end < 0) {
        this.keyText += s.slice(i);
        return n;
      }
      this.keyText += s.slice(i, end);
      this.inKeyString = false;
      this.key = this.keyText;
      return end + 1;
    }
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (isSpace(c) || c === COMMA) continue;
      if (c === 123 /* { */ && !this.seenOpen) {
        this.seenOpen = true;
        continue;
      }
      if (!this.seenOpen) throw new SyntaxError('A heap snapshot starts with {');
      if (c === 125 /* } */) {
        this.mode = Mode.Done;
        return i + 1;
      }
      if (c === QUOTE && this.key === '') {
        this.inKeyString = true;
        this.keyText = '';
        return i + 1;
      }
      if (c === COLON && this.key !== '') {
        this.mode = Mode.Value;
        return i + 1;
      }
      throw new SyntaxError(`Unexpected ${JSON.stringify(s[i])} in the heap snapshot's top level`);
    }
    return n;
  }

  private startValue(s: string, i: number): number {
    for (; i < s.length && isSpace(s.charCodeAt(i)); i++);
    if (i === s.length) return i;
    const key = this.key;
    this.key = '';
    const c = s.charCodeAt(i);
    if (c === 91 /* [ */ && (key === 'nodes' || key === 'edges' || key === 'locations')) {
      this.startNumbers(key);
      return i + 1;
    }
    if (c === 91 && key === 'strings') {
      this.mode = Mode.Strings;
      this.inString = false;
      return i + 1;
    }
    this.mode = Mode.Capture;
    this.capture = key === 'snapshot' ? [] : null;
    this.depth = 0;
    this.inString = false;
    this.escaped = false;
    this.started = false;
    return i;
  }

  private startNumbers(key: string): void {
    const meta = this.meta;
    if (meta === null)
      throw new SyntaxError(`The heap snapshot's "${key}" come before its "snapshot" header`);
    this.mode = Mode.Numbers;
    this.number = -1;
    this.column = 0;
    this.sizeColumn = -1;
    if (key === 'nodes') {
      this.fieldCount = meta.node_fields.length;
      this.nodes = this.target = new U32(this.nodeCountHint * this.fieldCount);
      this.sizeColumn = meta.node_fields.indexOf('self_size');
      this.sizes = new F64(this.nodeCountHint);
    } else if (key === 'edges') {
      this.fieldCount = meta.edge_fields.length;
      this.edges = this.target = new U32(this.edgeCountHint * this.fieldCount);
    } else {
      this.fieldCount = Math.max(1, meta.location_fields?.length ?? 4);
      this.locations = this.target = new U32(1024);
    }
  }

  private scanCapture(s: string, i: number): number {
    const n = s.length;
    const from = i;
    let finished = false;
    for (; i < n && !finished; i++) {
      const c = s.charCodeAt(i);
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === BACKSLASH) this.escaped = true;
        else if (c === QUOTE) {
          this.inString = false;
          finished = this.depth === 0;
        }
        continue;
      }
      if (c === QUOTE) {
        this.inString = true;
        this.started = true;
      } else if (c === 123 || c === 91) {
        this.depth++;
        this.started = true;
      } else if (c === 125 || c === 93) {
        if (this.depth === 0) {
          finished = true; // the end of a scalar value at the top level: leave the } to the caller
          break;
        }
        this.depth--;
        finished = this.depth === 0;
      } else if (c === COMMA && this.depth === 0 && this.started) {
        finished = true;
        break;
      } else if (!isSpace(c)) this.started = true;
    }
    if (this.capture !== null) this.capture.push(s.slice(from, i));
    if (finished) this.finishCapture();
    return i;
  }

  private finishCapture(): void {
    if (this.capture !== null) {
      const header = JSON.parse(this.capture.join('')) as {
        meta?: HeapSnapshotMeta;
        node_count?: number;
        edge_count?: number;
      };
      const meta = header.meta;
      if (!meta || !Array.isArray(meta.node_fields) || !Array.isArray(meta.edge_fields)) {
        throw new SyntaxError("The heap snapshot's header has no meta with node_fields and edge_fields");
      }
      this.meta = meta;
      this.nodeCountHint = header.node_count ?? 0;
      this.edgeCountHint = header.edge_count ?? 0;
      this.capture = null;
    }
    this.mode = Mode.Key;
  }

  private scanNumbers(s: string, i: number): number {
    const n = s.length;
    const target = this.target!;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      const d = c - 48;
      if (d >= 0 && d <= 9) {
        this.number = this.number < 0 ? d : this.number * 10 + d;
        continue;
      }
      if (this.number >= 0) this.endNumber(target);
      if (c === COMMA || isSpace(c)) continue;
      if (c === MINUS) {
        this.negative = true;
        continue;
      }
      if (c === 93 /* ] */) {
        this.mode = Mode.Key;
        return i + 1;
      }
      throw new SyntaxError(
        `Unexpected ${JSON.stringify(s[i])} in an array of integers in the heap snapshot`,
      );
    }
    return n;
  }

  private endNumber(target: U32): void {
    let v = this.number;
    if (this.negative) {
      v = 0; // no field V8 writes is negative; keep the row aligned
      this.negative = false;
    }
    if (this.column === this.sizeColumn) this.sizes.push(v);
    target.push(v > 0xffffffff ? 0xffffffff : v);
    this.number = -1;
    this.column = this.column + 1 === this.fieldCount ? 0 : this.column + 1;
  }

  private scanStrings(s: string, i: number): number {
    const n = s.length;
    while (i < n) {
      if (this.inString) {
        let j = i;
        for (; j < n; j++) {
          const c = s.charCodeAt(j);
          if (this.escaped) this.escaped = false;
          else if (c === BACKSLASH) {
            this.escaped = true;
            this.stringHasEscape = true;
          } else if (c === QUOTE) break;
        }
        if (j === n) {
          this.stringParts.push(s.slice(i));
          return n;
        }
        this.stringParts.push(s.slice(i, j));
        // join() makes a new flat string; a slice of 13 characters or more would be a view that
        // keeps the whole chunk alive, so those go through JSON.parse, which copies them.
        const raw = this.stringParts.length === 1 ? this.stringParts[0] : this.stringParts.join('');
        this.strings.push(
          this.stringHasEscape || (this.stringParts.length === 1 && raw.length >= 13)
            ? (JSON.parse(`"${raw}"`) as string)
            : raw,
        );
        this.stringParts = [];
        this.inString = false;
        i = j + 1;
        continue;
      }
      const c = s.charCodeAt(i);
      if (c === QUOTE) {
        this.inString = true;
        this.escaped = false;
        this.stringHasEscape = false;
      } else if (c === 93 /* ] */) {
        this.mode = Mode.Key;
        return i + 1;
      } else if (!(c === COMMA || isSpace(c))) {
        throw new SyntaxError(`Unexpected ${JSON.stringify(s[i])} in the heap snapshot's strings`);
      }
      i++;
    }
    return n;
  }

  /** Ends the input: returns the parsed snapshot or throws a SyntaxError if it is incomplete. */
  end(): HeapSnapshot {
    if (this.mode !== Mode.Done) throw new SyntaxError('The heap snapshot ended early');
    const meta = this.meta;
    if (meta === null || this.nodes === null || this.edges === null) {
      throw new SyntaxError('The heap snapshot has no snapshot header, nodes or edges');
    }
    const nodeFieldCount = meta.node_fields.length;
    const edgeFieldCount = meta.edge_fields.length;
    const nodes = this.nodes.done();
    const edges = this.edges.done();
    if (nodes.length % nodeFieldCount !== 0 || edges.length % edgeFieldCount !== 0) {
      throw new SyntaxError("The heap snapshot's nodes or edges do not fill whole rows");
    }
    const nodeCount = nodes.length / nodeFieldCount;
    const sizes = this.sizes.done();
    if (sizes.length !== nodeCount)
      throw new SyntaxError("The heap snapshot's nodes have no self_size column");
    const field = (fields: string[], name: string, where: string) => {
      const k = fields.indexOf(name);
      if (k < 0) throw new SyntaxError(`The heap snapshot's ${where} have no ${name}`);
      return k;
    };
    const enumNames = (types: unknown[], k: number, where: string): string[] => {
      const t = types[k];
      if (!Array.isArray(t)) throw new SyntaxError(`The heap snapshot's ${where} types are not listed`);
      return t.map(String);
    };
    const nf = meta.node_fields;
    const ef = meta.edge_fields;
    const lf = meta.location_fields ?? ['object_index', 'script_id', 'line', 'column'];
    const nodeType = field(nf, 'type', 'nodes');
    const edgeType = field(ef, 'type', 'edges');
    return {
      meta,
      nodeCount,
      edgeCount: edges.length / edgeFieldCount,
      nodeFieldCount,
      edgeFieldCount,
      nodes,
      selfSizes: sizes,
      edges,
      locations: this.locations.done(),
      locationFieldCount: lf.length,
      strings: this.strings,
      nodeTypes: enumNames(meta.node_types, nodeType, 'node'),
      edgeTypes: enumNames(meta.edge_types, edgeType, 'edge'),
      nodeField: {
        type: nodeType,
        name: field(nf, 'name', 'nodes'),
        id: field(nf, 'id', 'nodes'),
        selfSize: field(nf, 'self_size', 'nodes'),
        edgeCount: field(nf, 'edge_count', 'nodes'),
      },
      edgeField: {
        type: edgeType,
        nameOrIndex: field(ef, 'name_or_index', 'edges'),
        toNode: field(ef, 'to_node', 'edges'),
      },
      locationField: {
        objectIndex: Math.max(0, lf.indexOf('object_index')),
        scriptId: Math.max(0, lf.indexOf('script_id')),
        line: Math.max(0, lf.indexOf('line')),
        column: Math.max(0, lf.indexOf('column')),
      },
      textLength: this.textLength,
    };
  }
}

/**
 * Parses a V8 heap snapshot given as chunks of text (e.g. HeapProfiler.addHeapSnapshotChunk
 * messages or a file read as utf8), without ever holding the whole text.
 */
export async function parseHeapSnapshot(
  chunks: AsyncIterable<string> | Iterable<string>,
): Promise<HeapSnapshot> {
  const parser = new HeapSnapshotParser();
  for await (const chunk of chunks) parser.push(chunk);
  return parser.end();
}
