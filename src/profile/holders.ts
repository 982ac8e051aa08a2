// Who holds the native memory: from a V8 heap snapshot, the native bytes that JS objects keep alive
// (ArrayBuffer backing stores, the sizes Node reports for its own objects such as zlib streams),
// grouped by the nearest JS container that dominates them (a Map, a Set, an array, an object, a
// closure's variable), or by kind when no JS container does (objects kept only by Node's handles).
// Pure: the snapshot arrives as text chunks; holders() in holders-worker.ts takes this process's.
import { parseHeapSnapshot, type HeapSnapshot } from './heapsnapshot';
import { checkKeys, checkNumber, checkOptions, describe as describeValue } from '../base/validate';

/** Options of holdersFromSnapshot() and holders(). */
export interface HoldersOptions {
  /** How many groups to keep, largest first (default 50); the rest are summed in `otherBytes`. */
  top?: number;
  /** How many steps of retaining path to keep per group (default 8). */
  pathSteps?: number;
}

/** Native bytes of one kind within a group (e.g. the Buffers a Map holds). */
export interface HolderPart {
  /** What the native memory is: 'Buffer', 'ArrayBuffer', 'Gzip (ZlibStream)', … */
  kind: string;
  count: number;
  bytes: number;
}

/** The native bytes one holder keeps alive, or those of one kind that no JS container holds. */
export interface HolderGroup {
  /** Stable across snapshots of the same program: diffHolders() matches groups by it. */
  key: string;
  /** E.g. "Map `thumbs` (leak.js:12) → 2,914 Buffers, 51.3 MiB". */
  description: string;
  /**
   * The holder: its class and the variable or property that holds it (a closure variable that
   * holds a Buffer directly is named after the Buffer: Buffer `cache`), or null for a kind group.
   */
  holder: string | null;
  /** Where the holder's scope or function is: "file.js:line:column", or null if not known. */
  location: string | null;
  /** The kind with the most bytes (the kinds are in `parts`). */
  kind: string;
  /** How many native objects of `kind` (a Buffer pool slab shared by many Buffers counts once). */
  count: number;
  /** Native bytes held, all kinds. */
  bytes: number;
  parts: HolderPart[];
  /** An example retaining path, from the outermost step shown to a native object. */
  path: string[];
}

/** The native memory a heap snapshot shows, grouped by what keeps it alive (plain JSON). */
export interface Holders {
  /** ISO time the analysis finished (the snapshot was taken just before). */
  takenAt: string;
  /** Size of the snapshot text (UTF-8 bytes). */
  snapshotBytes: number;
  nodeCount: number;
  edgeCount: number;
  /** Every native byte the snapshot shows live (reachable from its root by strong edges). */
  nativeBytes: number;
  /** Groups, most bytes first, at most `top`. */
  groups: HolderGroup[];
  /** Native bytes in the groups left out by `top`. */
  otherBytes: number;
  /** Milliseconds from the first chunk to the result: parsing and analysis, and for a stream the wait for its chunks. */
  analysisMs: number;
}

/** One group's change between two readings. */
export interface HolderChange {
  key: string;
  description: string;
  kind: string;
  bytesBefore: number;
  bytesAfter: number;
  bytesDelta: number;
  countBefore: number;
  countAfter: number;
  countDelta: number;
}

/** What grew (and shrank) between two Holders readings, largest growth first. */
export interface HoldersDiff {
  from: string;
  to: string;
  elapsedMs: number;
  nativeBytesDelta: number;
  changes: HolderChange[];
}

const NONE = 0xffffffff;
// Node lists every object it must delete at exit (a cleanup queue in Node 20, a base object list
// in Node 22): the list does not keep them alive (dropping the last JS reference frees them), so
// its edges count as weak here.
const nonRetaining = new Set(['Node / CleanupQueue', 'Node / BaseObjectList']);
const knownOptions = ['top', 'pathSteps'];

/** Validated options. */
export function holdersOptions(where: string, options: unknown): Required<HoldersOptions> {
  const o = checkOptions(where, options);
  checkKeys(where, o, knownOptions);
  return {
    top: checkNumber(`${where}.top`, o.top, 50, 1, 1e6, true),
    pathSteps: checkNumber(`${where}.pathSteps`, o.pathSteps, 8, 1, 100, true),
  };
}

/** Counts the UTF-8 bytes of the chunks as they pass. */
async function* counted(
  chunks: AsyncIterable<string> | Iterable<string>,
  total: { bytes: number },
): AsyncGenerator<string> {
  for await (const chunk of chunks) {
    if (typeof chunk !== 'string') {
      throw new TypeError(`Expected chunks of text for chunks but received ${describeValue(chunk)}`);
    }
    total.bytes += Buffer.byteLength(chunk, 'utf8');
    yield chunk;
  }
}

/**
 * Finds the native memory that JS objects keep alive in a V8 heap snapshot given as text chunks
 * (e.g. a .heapsnapshot file read as utf8, or HeapProfiler.addHeapSnapshotChunk messages), grouped
 * by the nearest JS container that dominates it. The text is never held whole.
 */
export async function holdersFromSnapshot(
  chunks: AsyncIterable<string> | Iterable<string>,
  options?: HoldersOptions,
): Promise<Holders> {
  const o = holdersOptions('options', options);
  if (
    chunks === null ||
    typeof chunks !== 'object' ||
    (typeof (chunks as AsyncIterable<string>)[Symbol.asyncIterator] !== 'function' &&
      typeof (chunks as Iterable<string>)[Symbol.iterator] !== 'function')
  ) {
    throw new TypeError(`Expected an iterable of strings for chunks but received ${describeValue(chunks)}`);
  }
  const total = { bytes: 0 };
  const start = Date.now();
  const snapshot = await parseHeapSnapshot(counted(chunks, total));
  return analyseSnapshot(snapshot, o, total.bytes, Date.now() - start);
}

/** The Holders of a parsed snapshot. */
export function analyseSnapshot(
  s: HeapSnapshot,
  o: Required<HoldersOptions>,
  snapshotBytes: number,
  parseMs: number,
): Holders {
  const start = Date.now();
  const g = new Graph(s);
  const result = g.groups(o);
  return {
    takenAt: new Date().toISOString(),
    snapshotBytes,
    nodeCount: s.nodeCount,
    edgeCount: s.edgeCount,
    nativeBytes: result.nativeBytes,
    groups: result.groups,
    otherBytes: result.otherBytes,
    analysisMs: parseMs + (Date.now() - start),
  };
}

interface Item {
  anchor: number; // the outermost native node of the object
  object: number; // the JS object the item is, for the user (a Buffer, a Gzip stream)
  kind: string;
  bytes: number;
  parts: Set<number>; // nodes that belong to the item (not holders)
}

interface GroupAcc {
  key: string;
  holder: string | null;
  location: string | null;
  parts: Map<string, HolderPart>;
  bytes: number;
  path: string[];
}

const MiB = 1024 * 1024;

function formatBytes(bytes: number): string {
  if (bytes >= 1024 * MiB) return `${(bytes / 1024 / MiB).toFixed(1)} GiB`;
  if (bytes >= MiB) return `${(bytes / MiB).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} B`;
}

function plural(kind: string, count: number): string {
  if (count === 1) return kind;
  const paren = kind.indexOf(' (');
  return paren > 0 ? `${kind.slice(0, paren)}s${kind.slice(paren)}` : `${kind}s`;
}

/** The snapshot as a graph: edges by node, retainers, dominators. */
class Graph {
  readonly n: number;
  readonly NF: number;
  readonly EF: number;
  readonly firstEdge: Uint32Array;
  readonly firstRetainer: Uint32Array;
  readonly retainerNode: Uint32Array;
  readonly retainerEdge: Uint32Array;
  readonly idom: Uint32Array;
  readonly reachable: Uint8Array;
  readonly weak: number;
  /** 1 for an edge (by edge index / edgeFieldCount) that retains: not weak, not from a cleanup queue. */
  readonly strong: Uint8Array;
  private readonly t: {
    native: number;
    synthetic: number;
    object: number;
    closure: number;
    hidden: number;
    array: number;
    code: number;
  };
  private readonly e: {
    context: number;
    element: number;
    property: number;
    internal: number;
    hidden: number;
  };
  private locationRow: Map<number, number> | null = null;

  constructor(readonly s: HeapSnapshot) {
    const { nodes, edges, nodeField, edgeField } = s;
    const NF = (this.NF = s.nodeFieldCount);
    const EF = (this.EF = s.edgeFieldCount);
    const n = (this.n = s.nodeCount);
    const nt = (name: string) => s.nodeTypes.indexOf(name);
    this.t = {
      native: nt('native'),
      synthetic: nt('synthetic'),
      object: nt('object'),
      closure: nt('closure'),
      hidden: nt('hidden'),
      array: nt('array'),
      code: nt('code'),
    };
    const et = (name: string) => s.edgeTypes.indexOf(name);
    this.e = {
      context: et('context'),
      element: et('element'),
      property: et('property'),
      internal: et('internal'),
      hidden: et('hidden'),
    };
    this.weak = et('weak');
    const quiet = new Uint8Array(n); // nodes whose edges do not retain
    for (let i = 0; i < n; i++) {
      if (nonRetaining.has(s.strings[nodes[i * NF + nodeField.name]] ?? '')) quiet[i] = 1;
    }
    const firstEdge = (this.firstEdge = new Uint32Array(n + 1));
    for (let i = 0, e = 0; i < n; i++) {
      firstEdge[i] = e;
      e += nodes[i * NF + nodeField.edgeCount] * EF;
      if (e > edges.length) throw new SyntaxError("The heap snapshot's edge counts exceed its edges");
    }
    firstEdge[n] = edges.length;
    // Retainers by strong edges, in one flat array (counting sort by target).
    const firstRetainer = (this.firstRetainer = new Uint32Array(n + 1));
    const typeCol = edgeField.type;
    const toCol = edgeField.toNode;
    const strongFlags = (this.strong = new Uint8Array(edges.length / EF));
    for (let i = 0; i < n; i++) {
      if (quiet[i]) continue;
      for (let e = firstEdge[i]; e < firstEdge[i + 1]; e += EF) {
        if (edges[e + typeCol] === this.weak) continue;
        strongFlags[e / EF] = 1;
        firstRetainer[edges[e + toCol] / NF + 1]++;
      }
    }
    for (let i = 0; i < n; i++) firstRetainer[i + 1] += firstRetainer[i];
    const fill = firstRetainer.slice(0, n);
    const strong = firstRetainer[n];
    this.retainerNode = new Uint32Array(strong);
    this.retainerEdge = new Uint32Array(strong);
    for (let i = 0; i < n; i++) {
      for (let e = firstEdge[i]; e < firstEdge[i + 1]; e += EF) {
        if (!strongFlags[e / EF]) continue;
        const to = edges[e + toCol] / NF;
        const k = fill[to]++;
        this.retainerNode[k] = i;
        this.retainerEdge[k] = e;
      }
    }
    this.reachable = new Uint8Array(n);
    this.idom = this.dominators();
  }

  /** Immediate dominators from node 0 (Cooper, Harvey and Kennedy), NONE for unreachable nodes. */
  private dominators(): Uint32Array {
    const { n, NF, EF, firstEdge, s } = this;
    const { edges } = s;
    const toCol = s.edgeField.toNode;
    // Post-order by an iterative depth-first search over strong edges.
    const post = new Uint32Array(n).fill(NONE); // node -> post-order number
    const order = new Uint32Array(n); // post-order number -> node
    const stack = new Uint32Array(n);
    const cursor = new Uint32Array(n);
    let count = 0;
    let top = 0;
    stack[0] = 0;
    cursor[0] = firstEdge[0];
    this.reachable[0] = 1;
    while (top >= 0) {
      const v = stack[top];
      let e = cursor[top];
      let pushed = false;
      for (; e < firstEdge[v + 1]; e += EF) {
        if (!this.strong[e / EF]) continue;
        const w = edges[e + toCol] / NF;
        if (this.reachable[w]) continue;
        this.reachable[w] = 1;
        cursor[top] = e + EF;
        stack[++top] = w;
        cursor[top] = firstEdge[w];
        pushed = true;
        break;
      }
      if (!pushed) {
        post[v] = count;
        order[count++] = v;
        top--;
      }
    }
    const rootPost = count - 1;
    const dom = new Uint32Array(count).fill(NONE); // by post-order number
    dom[rootPost] = rootPost;
    const { firstRetainer, retainerNode } = this;
    let changed = true;
    while (changed) {
      changed = false;
      for (let p = rootPost - 1; p >= 0; p--) {
        const v = order[p];
        let d = NONE;
        for (let k = firstRetainer[v]; k < firstRetainer[v + 1]; k++) {
          const rp = post[retainerNode[k]];
          if (rp === NONE || dom[rp] === NONE) continue;
          if (d === NONE) d = rp;
          else {
            let a = rp;
            let b = d;
            while (a !== b) {
              while (a < b) a = dom[a];
              while (b < a) b = dom[b];
            }
            d = a;
          }
        }
        if (d !== dom[p]) {
          dom[p] = d;
          changed = true;
        }
      }
    }
    const idom = new Uint32Array(n).fill(NONE);
    for (let p = 0; p < count; p++) idom[order[p]] = order[dom[p]];
    idom[0] = NONE;
    return idom;
  }

  type(i: number): number {
    return this.s.nodes[i * this.NF + this.s.nodeField.type];
  }
  name(i: number): string {
    return this.s.strings[this.s.nodes[i * this.NF + this.s.nodeField.name]] ?? '';
  }
  size(i: number): number {
    return this.s.selfSizes[i];
  }
  edgeType(e: number): number {
    return this.s.edges[e + this.s.edgeField.type];
  }
  edgeTo(e: number): number {
    return this.s.edges[e + this.s.edgeField.toNode] / this.NF;
  }
  edgeName(e: number): string {
    const v = this.s.edges[e + this.s.edgeField.nameOrIndex];
    const t = this.edgeType(e);
    return t === this.e.element || t === this.e.hidden ? String(v) : (this.s.strings[v] ?? '');
  }
  /** The first edge from `from` to `to`, by name, or -1. */
  edgeBetween(from: number, to: number, name?: string): number {
    for (let e = this.firstEdge[from]; e < this.firstEdge[from + 1]; e += this.EF) {
      if (
        this.edgeTo(e) === to &&
        this.edgeType(e) !== this.weak &&
        (name === undefined || this.edgeName(e) === name)
      )
        return e;
    }
    return -1;
  }
  /** The first strong edge from `from` with this name, or -1. */
  edgeNamed(from: number, name: string): number {
    for (let e = this.firstEdge[from]; e < this.firstEdge[from + 1]; e += this.EF) {
      if (this.strong[e / this.EF] && this.edgeName(e) === name) return e;
    }
    return -1;
  }

  /** Native memory: V8's native nodes and the sized C++ objects Node reports (synthetic "Node / …"). */
  private isNative(i: number): boolean {
    const t = this.type(i);
    return t === this.t.native || (t === this.t.synthetic && this.name(i).startsWith('Node / '));
  }

  /** A JS object a program made that can hold others: not V8's or the snapshot's internals. */
  private isContainer(i: number): boolean {
    const t = this.type(i);
    if (t !== this.t.object && t !== this.t.closure) return false;
    const name = this.name(i);
    return !name.startsWith('system / ') && !name.startsWith('(');
  }

  private isContext(i: number): boolean {
    return this.type(i) === this.t.object && this.name(i) === 'system / Context';
  }

  /** The script and position of a closure: "file.js:12:3", or null. */
  private closureLocation(closure: number): string | null {
    if (this.locationRow === null) {
      this.locationRow = new Map();
      const { locations, locationFieldCount, locationField } = this.s;
      for (let r = 0; r < locations.length; r += locationFieldCount) {
        this.locationRow.set(locations[r + locationField.objectIndex] / this.NF, r);
      }
    }
    const r = this.locationRow.get(closure);
    let script = '';
    const shared = this.edgeNamed(closure, 'shared');
    if (shared >= 0) {
      const sfi = this.edgeTo(shared);
      let se = this.edgeNamed(sfi, 'script_or_debug_info');
      if (se < 0) se = this.edgeNamed(sfi, 'script');
      if (se >= 0) script = this.name(this.edgeTo(se));
    }
    if (r === undefined) return script || null;
    const { locations, locationField } = this.s;
    const pos = `${locations[r + locationField.line] + 1}:${locations[r + locationField.column] + 1}`;
    return `${script || '(unknown script)'}:${pos}`;
  }

  /** Where a context's variables live: the location of the first function that closes over it. */
  private contextLocation(context: number): string | null {
    let best: string | null = null;
    let bestLine = Infinity;
    for (let k = this.firstRetainer[context]; k < this.firstRetainer[context + 1]; k++) {
      const from = this.retainerNode[k];
      if (this.type(from) !== this.t.closure || this.edgeName(this.retainerEdge[k]) !== 'context') continue;
      const loc = this.closureLocation(from);
      const m = loc === null ? null : /:(\d+):\d+$/.exec(loc);
      const line = m ? Number(m[1]) : Infinity;
      if (loc !== null && (best === null || line < bestLine)) {
        best = loc;
        bestLine = line;
      }
    }
    return best;
  }

  /** The edge by which a node is held: from its dominator if direct, else its first retainer. */
  private holdingEdge(i: number): number {
    const d = this.idom[i];
    let first = -1;
    for (let k = this.firstRetainer[i]; k < this.firstRetainer[i + 1]; k++) {
      if (this.retainerNode[k] === d) return this.retainerEdge[k];
      if (first < 0 && this.reachable[this.retainerNode[k]]) first = this.retainerEdge[k];
    }
    return first;
  }

  private retainerOf(e: number): number {
    // Edges are laid out by source node: find the node whose range holds e.
    let lo = 0;
    let hi = this.n - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.firstEdge[mid] <= e) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  private nodeLabel(i: number): string {
    const t = this.type(i);
    const name = this.name(i);
    if (t === this.t.closure) return `function ${name || '(anonymous)'}`;
    if (this.isContext(i)) return 'scope';
    if (t === this.t.array || t === this.t.hidden) return name ? `(${name})` : '(internal)';
    return name || `(${this.s.nodeTypes[t]})`;
  }

  private edgeLabel(e: number): string {
    const t = this.edgeType(e);
    const name = this.edgeName(e);
    if (t === this.e.context) return `variable \`${name}\``;
    if (t === this.e.element) return `[${name}]`;
    if (t === this.e.property) return `.${name}`;
    return `(${name})`;
  }

  /** The item a native node belongs to: the outermost native node dominating it, and its JS object. */
  private item(i: number): Item {
    let anchor = i;
    while (this.idom[anchor] !== NONE && this.idom[anchor] !== 0 && this.isNative(this.idom[anchor])) {
      anchor = this.idom[anchor];
    }
    const parts = new Set<number>([anchor]);
    const name = this.name(anchor);
    let object = anchor;
    let kind = name.replace(/^(Node|system) \/ /, '');
    if (name === 'system / JSArrayBufferData') {
      const ab = this.idom[anchor];
      kind = 'ArrayBuffer';
      if (ab !== NONE && ab !== 0 && this.type(ab) === this.t.object) {
        object = ab;
        kind = this.name(ab) || kind;
        parts.add(ab);
        const view = this.idom[ab];
        if (view !== NONE && view !== 0 && this.edgeBetween(view, ab, 'buffer') >= 0) {
          object = view;
          kind = this.name(view) || kind;
          parts.add(view);
        }
      }
    } else {
      // Node's C++ objects point to their JS wrapper; the wrapper's owner names the kind.
      const w = this.edgeNamed(anchor, 'native_to_javascript');
      if (w >= 0) {
        const wrapper = this.edgeTo(w);
        object = wrapper;
        parts.add(wrapper);
        for (let k = this.firstRetainer[wrapper]; k < this.firstRetainer[wrapper + 1]; k++) {
          const from = this.retainerNode[k];
          if (
            this.edgeType(this.retainerEdge[k]) === this.e.property &&
            this.isContainer(from) &&
            this.reachable[from]
          ) {
            object = from;
            kind = `${this.name(from)} (${kind})`;
            parts.add(from);
            break;
          }
        }
      }
    }
    return { anchor, object, kind, bytes: 0, parts };
  }

  groups(o: Required<HoldersOptions>): { nativeBytes: number; groups: HolderGroup[]; otherBytes: number } {
    const { n, idom } = this;
    const items = new Map<number, Item>();
    let nativeBytes = 0;
    for (let i = 1; i < n; i++) {
      if (!this.reachable[i] || this.size(i) <= 0 || !this.isNative(i)) continue;
      nativeBytes += this.size(i);
      let anchor = i;
      while (idom[anchor] !== NONE && idom[anchor] !== 0 && this.isNative(idom[anchor]))
        anchor = idom[anchor];
      let item = items.get(anchor);
      if (item === undefined) {
        item = this.item(i);
        items.set(anchor, item);
      }
      item.bytes += this.size(i);
    }
    // Objects that own a native item (a Gzip stream): memory they hold joins that item's group.
    const ownerItem = new Map<number, Item>();
    for (const item of items.values()) if (item.object !== item.anchor) ownerItem.set(item.object, item);
    const groupOf = new Map<Item, GroupAcc>();
    const groups = new Map<string, GroupAcc>();
    // Items that are Node's objects first, so that buffers they own can join their groups.
    const ordered = [...items.values()].sort(
      (a, b) =>
        Number(this.name(a.anchor) === 'system / JSArrayBufferData') -
        Number(this.name(b.anchor) === 'system / JSArrayBufferData'),
    );
    for (const item of ordered) {
      let holder = NONE;
      let joined: GroupAcc | undefined;
      for (let prev = item.object, v = idom[prev]; v !== NONE && v !== 0; prev = v, v = idom[v]) {
        const owner = ownerItem.get(v);
        if (owner !== undefined && owner !== item && groupOf.has(owner)) {
          joined = groupOf.get(owner);
          break;
        }
        if (!item.parts.has(v) && this.isContainer(v)) {
          holder = v;
          break;
        }
        // A closure variable that holds the object (or what holds it) directly is the holder.
        if (this.isContext(v)) {
          const e = this.edgeBetween(v, prev);
          if (e >= 0 && this.edgeType(e) === this.e.context) {
            holder = prev;
            break;
          }
        }
      }
      const acc = joined ?? this.group(item, holder, groups, o);
      groupOf.set(item, acc);
      let part = acc.parts.get(item.kind);
      if (part === undefined) acc.parts.set(item.kind, (part = { kind: item.kind, count: 0, bytes: 0 }));
      part.count++;
      part.bytes += item.bytes;
      acc.bytes += item.bytes;
    }
    const all = [...groups.values()].sort((a, b) => b.bytes - a.bytes);
    const kept = all.slice(0, o.top);
    const otherBytes = all.slice(o.top).reduce((sum, g) => sum + g.bytes, 0);
    return { nativeBytes, groups: kept.map((g) => this.finish(g)), otherBytes };
  }

  /** The group of an item's holder (NONE: of its kind), made on first use. */
  private group(
    item: Item,
    holder: number,
    groups: Map<string, GroupAcc>,
    o: Required<HoldersOptions>,
  ): GroupAcc {
    let label: string | null = null;
    let location: string | null = null;
    let key: string;
    if (holder === NONE) {
      key = `kind:${item.kind}`;
    } else {
      const e = this.holdingEdge(holder);
      const from = e >= 0 ? this.retainerOf(e) : NONE;
      const cls = this.nodeLabel(holder);
      if (e >= 0 && this.edgeType(e) === this.e.context) {
        label = `${cls} \`${this.edgeName(e)}\``;
        location = this.contextLocation(from);
      } else if (e >= 0 && this.edgeType(e) === this.e.property) {
        label = `${cls} \`${this.nodeLabel(from)}.${this.edgeName(e)}\``;
      } else if (e >= 0 && this.edgeType(e) === this.e.element) {
        label = `${cls} in ${this.nodeLabel(from)}`;
      } else label = cls;
      if (this.type(holder) === this.t.closure) location = this.closureLocation(holder);
      key = `holder:${label}|${location ?? ''}`;
    }
    let acc = groups.get(key);
    if (acc === undefined) {
      acc = {
        key,
        holder: label,
        location,
        parts: new Map(),
        bytes: 0,
        path: this.path(item, holder, o.pathSteps),
      };
      groups.set(key, acc);
    }
    return acc;
  }

  /** An example retaining path down to the item's native node, along dominators. */
  private path(item: Item, holder: number, steps: number): string[] {
    const chain: number[] = [];
    for (let v = item.anchor; v !== NONE; v = this.idom[v]) {
      chain.push(v);
      if (v === 0) break;
    }
    chain.reverse();
    let start = holder === NONE ? 0 : chain.indexOf(holder);
    if (start > 0) start--; // the holder's own retainer, for its variable or property name
    const shown = chain.slice(Math.max(start, chain.length - steps));
    return shown.map((v, k) => {
      const label = this.nodeLabel(v);
      if (k === 0) return label;
      const e = this.edgeBetween(shown[k - 1], v);
      return e >= 0 ? `${this.edgeLabel(e)} → ${label}` : `… → ${label}`;
    });
  }

  private finish(g: GroupAcc): HolderGroup {
    const parts = [...g.parts.values()].sort((a, b) => b.bytes - a.bytes);
    const main = parts[0];
    const what = parts
      .map((p) => `${p.count.toLocaleString('en-US')} ${plural(p.kind, p.count)}`)
      .join(' + ');
    const where = g.location ? ` (${g.location})` : '';
    const description =
      g.holder === null
        ? `${plural(main.kind, 2)} held by no JS container: ${what}, ${formatBytes(g.bytes)}`
        : `${g.holder}${where} → ${what}, ${formatBytes(g.bytes)}`;
    return {
      key: g.key,
      description,
      holder: g.holder,
      location: g.location,
      kind: main.kind,
      count: main.count,
      bytes: g.bytes,
      parts,
      path: g.path,
    };
  }
}

/** Throws a TypeError unless `value` looks like a Holders reading. */
function checkHolders(where: string, value: unknown): Holders {
  const h = value as Holders;
  if (
    value === null ||
    typeof value !== 'object' ||
    !Array.isArray(h.groups) ||
    typeof h.takenAt !== 'string'
  ) {
    throw new TypeError(`Expected a Holders reading for ${where} but received ${describeValue(value)}`);
  }
  return h;
}

/** What grew between two Holders readings: groups matched by key, largest growth first. */
export function diffHolders(before: Holders, after: Holders): HoldersDiff {
  const a = checkHolders('before', before);
  const b = checkHolders('after', after);
  const old = new Map(a.groups.map((g) => [g.key, g]));
  const changes: HolderChange[] = [];
  const seen = new Set<string>();
  for (const g of b.groups) {
    seen.add(g.key);
    const p = old.get(g.key);
    changes.push({
      key: g.key,
      description: g.description,
      kind: g.kind,
      bytesBefore: p?.bytes ?? 0,
      bytesAfter: g.bytes,
      bytesDelta: g.bytes - (p?.bytes ?? 0),
      countBefore: p?.count ?? 0,
      countAfter: g.count,
      countDelta: g.count - (p?.count ?? 0),
    });
  }
  for (const p of a.groups) {
    if (seen.has(p.key)) continue;
    changes.push({
      key: p.key,
      description: p.description,
      kind: p.kind,
      bytesBefore: p.bytes,
      bytesAfter: 0,
      bytesDelta: -p.bytes,
      countBefore: p.count,
      countAfter: 0,
      countDelta: -p.count,
    });
  }
  changes.sort((x, y) => y.bytesDelta - x.bytesDelta);
  return {
    from: a.takenAt,
    to: b.takenAt,
    elapsedMs: Date.parse(b.takenAt) - Date.parse(a.takenAt),
    nativeBytesDelta: b.nativeBytes - a.nativeBytes,
    changes,
  };
}
