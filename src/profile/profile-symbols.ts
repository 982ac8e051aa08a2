// Native frames to function names, in-process: the mappings of /proc/self/maps (or the copy a heap
// dump carries), and the ELF symbol tables (.symtab and .dynsym) of each mapped object, read from
// disk with positioned reads of the headers and the two tables only (the node binary is ~100 MB;
// its symbol tables ~17 MB with their strings). No N-API here: demangling is passed in.
import { open, readFile, type FileHandle } from 'node:fs/promises';
import * as path from 'node:path';

export interface Mapping {
  start: number;
  end: number;
  /** File offset mapped at `start`. */
  offset: number;
  perms: string;
  /** The mapped file's path; '' for anonymous mappings, '[stack]' and the like for special ones. */
  path: string;
}

/** Parses /proc/<pid>/maps text: "start-end perms offset dev inode path". */
export function parseMaps(text: string): Mapping[] {
  const out: Mapping[] = [];
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+)\s+(\S+)\s+([0-9a-f]+)\s+\S+\s+\d+\s*(.*)$/i.exec(line);
    if (!m) continue;
    out.push({
      start: Number.parseInt(m[1], 16),
      end: Number.parseInt(m[2], 16),
      perms: m[3],
      offset: Number.parseInt(m[4], 16),
      path: m[5].trim(),
    });
  }
  return out.sort((a, b) => a.start - b.start);
}

/** A mapping of a file on disk (not anonymous, not [vdso], not a deleted file). */
export function isFileBacked(m: Mapping): boolean {
  return m.path.startsWith('/') && !m.path.endsWith(' (deleted)');
}

/** The mapping that holds `address`, or null. `maps` sorted by start. */
export function findMapping(maps: Mapping[], address: number): Mapping | null {
  let lo = 0;
  let hi = maps.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const m = maps[mid];
    if (address < m.start) hi = mid - 1;
    else if (address >= m.end) lo = mid + 1;
    else return m;
  }
  return null;
}

interface Segment {
  offset: number;
  vaddr: number;
  filesz: number;
}

interface SymbolSection {
  offset: number;
  size: number;
  strOffset: number;
  strSize: number;
}

// Symbols scanned between two turns of the event loop, so that a large table (node has ~190 k)
// never holds the JS thread for long.
const SCAN_CHUNK = 8192;
const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * One ELF object: its PT_LOAD segments (for load-bias arithmetic) and where its symbol tables
 * are. The tables themselves are read only while names are looked up, and not kept.
 */
export class ElfFile {
  private constructor(
    readonly file: string,
    readonly segments: Segment[],
    private readonly tables: SymbolSection[],
  ) {}

  /** Reads the ELF and section headers. Throws when `file` is not a 64-bit little-endian ELF. */
  static async open(file: string): Promise<ElfFile> {
    return withFile(file, async (at) => {
      const eh = await at(0, 64);
      if (eh.readUInt32BE(0) !== 0x7f454c46 || eh[4] !== 2 || eh[5] !== 1) {
        throw new Error(`${file}: not a 64-bit little-endian ELF object`);
      }
      const phoff = u64(eh, 0x20);
      const shoff = u64(eh, 0x28);
      const phentsize = eh.readUInt16LE(0x36);
      const phnum = eh.readUInt16LE(0x38);
      const shentsize = eh.readUInt16LE(0x3a);
      const shnum = eh.readUInt16LE(0x3c);
      const segments: Segment[] = [];
      if (phnum > 0) {
        const ph = await at(phoff, phentsize * phnum);
        for (let i = 0; i < phnum; i++) {
          const o = i * phentsize;
          if (ph.readUInt32LE(o) !== 1) continue; // PT_LOAD
          segments.push({ offset: u64(ph, o + 8), vaddr: u64(ph, o + 16), filesz: u64(ph, o + 32) });
        }
      }
      const tables: SymbolSection[] = [];
      if (shnum > 0 && shoff > 0) {
        const sh = await at(shoff, shentsize * shnum);
        const section = (i: number) => {
          const o = i * shentsize;
          return {
            type: sh.readUInt32LE(o + 4),
            offset: u64(sh, o + 24),
            size: u64(sh, o + 32),
            link: sh.readUInt32LE(o + 40),
          };
        };
        for (let i = 0; i < shnum; i++) {
          const s = section(i);
          if ((s.type !== 2 && s.type !== 11) || s.link >= shnum) continue; // SHT_SYMTAB, SHT_DYNSYM
          const strs = section(s.link);
          tables.push({ offset: s.offset, size: s.size, strOffset: strs.offset, strSize: strs.size });
        }
      }
      return new ElfFile(file, segments, tables);
    });
  }

  /**
   * The object's own virtual address for a process address inside `mapping` (the load bias
   * removed): the PT_LOAD segment that maps the mapping's file offset gives vaddr - offset.
   */
  toVaddr(mapping: Mapping, address: number): number {
    const fileOffset = address - mapping.start + mapping.offset;
    for (const s of this.segments) {
      if (fileOffset >= s.offset && fileOffset < s.offset + s.filesz)
        return s.vaddr + (fileOffset - s.offset);
    }
    return fileOffset;
  }

  /**
   * Names the functions that hold `vaddrs`: the sized function symbol (STT_FUNC, STT_GNU_IFUNC)
   * that contains the address, else the nearest unsized symbol below it. One pass over each
   * table; no table is sorted or kept.
   */
  async lookup(vaddrs: number[]): Promise<Map<number, string>> {
    const want = Float64Array.from(new Set(vaddrs)).sort();
    const bestValue = new Float64Array(want.length).fill(-1);
    const bestName = new Float64Array(want.length).fill(-1); // file offset of the name
    const unsized: { value: number; name: number }[] = [];
    const out = new Map<number, string>();
    await withFile(this.file, async (at) => {
      // One window, reused: the tables are streamed through it, so a profile leaves no large
      // Buffers behind (they would show in the next profile as Buffer allocations).
      const window = Buffer.allocUnsafe(24 * SCAN_CHUNK);
      for (const t of this.tables) {
        for (let start = 0; start + 24 <= t.size; start += window.length) {
          const length = Math.min(window.length, t.size - start);
          const symbols = await at(t.offset + start, length - (length % 24), window);
          for (let o = 0; o + 24 <= symbols.length; o += 24) {
            const type = symbols[o + 4] & 0xf;
            if (type !== 2 && type !== 10 && type !== 0) continue; // FUNC, GNU_IFUNC, NOTYPE
            if (symbols.readUInt16LE(o + 6) === 0) continue; // SHN_UNDEF
            const name = symbols.readUInt32LE(o);
            const value = u64(symbols, o + 8);
            if (value === 0 || name === 0) continue;
            const size = u64(symbols, o + 16);
            if (size === 0) {
              unsized.push({ value, name: t.strOffset + name });
              continue;
            }
            for (let j = lowerBound(want, value); j < want.length && want[j] < value + size; j++) {
              if (value > bestValue[j]) {
                bestValue[j] = value;
                bestName[j] = t.strOffset + name;
              }
            }
          }
          await yieldToLoop();
        }
      }
      unsized.sort((x, y) => x.value - y.value);
      const nameBuf = Buffer.allocUnsafe(256);
      const readName = async (offset: number): Promise<string> => {
        let name = '';
        for (;;) {
          const chunk = await at(offset, nameBuf.length, nameBuf, true);
          const stop = chunk.indexOf(0);
          name += chunk.toString('latin1', 0, stop < 0 ? chunk.length : stop);
          if (stop >= 0 || chunk.length < nameBuf.length || name.length > 65536) return name;
          offset += chunk.length;
        }
      };
      for (let j = 0; j < want.length; j++) {
        let offset = bestName[j];
        if (offset < 0 && unsized.length) {
          let lo = 0;
          let hi = unsized.length - 1;
          while (lo <= hi) {
            const mid = (lo + hi) >> 1;
            if (unsized[mid].value <= want[j]) {
              offset = unsized[mid].name;
              lo = mid + 1;
            } else hi = mid - 1;
          }
        }
        if (offset < 0) continue;
        const name = await readName(offset);
        // Local labels (.L..., $x) name no function.
        if (name && !name.startsWith('.L') && !name.startsWith('$')) out.set(want[j], name);
      }
    });
    return out;
  }
}

// Two 32-bit reads: no BigInt per field (a table has ~190 k symbols). Exact below 2^53.
const u64 = (b: Buffer, off: number) => b.readUInt32LE(off) + b.readUInt32LE(off + 4) * 0x100000000;

function lowerBound(xs: Float64Array, v: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Reads `length` bytes at `position` (into `into` when given); `partial`: stop at end of file. */
type ReadAt = (position: number, length: number, into?: Buffer, partial?: boolean) => Promise<Buffer>;

async function withFile<T>(file: string, fn: (at: ReadAt) => Promise<T>): Promise<T> {
  const fh: FileHandle = await open(file, 'r');
  try {
    return await fn(async (position, length, into, partial) => {
      const buf = into ?? Buffer.allocUnsafe(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await fh.read(buf, done, length - done, position + done);
        if (bytesRead === 0) {
          if (partial) break;
          throw new Error(`${file}: truncated at ${position + done}`);
        }
        done += bytesRead;
      }
      return buf.subarray(0, done);
    });
  } finally {
    await fh.close();
  }
}

/**
 * A JIT code name from V8's --perf-basic-prof map ("JS:^makeBuffers /srv/app.js:4:21"): the tier
 * marker and the "JS:"/"LazyCompile:" kind dropped, so "makeBuffers /srv/app.js:4:21".
 */
export function jitName(raw: string): string {
  const m = /^(?:JS|LazyCompile|Function|Script|Eval):[~^+*]?(.*)$/.exec(raw);
  if (!m) return raw;
  const rest = m[1];
  return rest.startsWith(' ') ? `(anonymous)${rest}` : rest;
}

/**
 * Names `addresses` from a perf map ("<hex start> <hex size> <name>" a line, as V8 writes
 * /tmp/perf-<pid>.map). V8 appends as it compiles, and reuses addresses once code is collected:
 * the last line that covers an address names it.
 */
export async function perfMapNames(file: string, addresses: number[]): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  if (addresses.length === 0) return out;
  let text: string;
  try {
    text = await readFile(file, 'latin1');
  } catch {
    return out;
  }
  const want = Float64Array.from(new Set(addresses)).sort();
  const named = new Array<string | undefined>(want.length);
  let left = want.length;
  let end = text.length;
  let lines = 0;
  while (end > 0 && left > 0) {
    const start = text.lastIndexOf('\n', end - 1) + 1;
    const line = text.slice(start, end);
    end = start - 1;
    if (++lines % SCAN_CHUNK === 0) await yieldToLoop();
    const m = /^([0-9a-f]+) ([0-9a-f]+) (.*)$/i.exec(line);
    if (!m) continue;
    const lo = Number.parseInt(m[1], 16);
    const hi = lo + Number.parseInt(m[2], 16);
    for (let j = lowerBound(want, lo); j < want.length && want[j] < hi; j++) {
      if (named[j] === undefined) {
        named[j] = m[3];
        left--;
      }
    }
  }
  named.forEach((n, j) => n !== undefined && out.set(want[j], n));
  return out;
}

export interface Frame {
  /** Demangled function name; `[unknown in <file>]` inside a known object, `[jit]` outside any file. */
  name: string;
  /** The symbol as the object names it (mangled), '' when unknown. */
  systemName: string;
  /** The file-backed mapping the address falls in, or null. */
  mapping: Mapping | null;
}

/**
 * Resolves addresses against one set of mappings. ELF headers are cached per file path, and names
 * per file and address, for the life of the process; symbol tables are read again only for
 * addresses not seen before.
 */
export class Symbolizer {
  private readonly frames = new Map<number, Frame>();
  constructor(
    readonly maps: Mapping[],
    private readonly demangle: (names: string[]) => string[],
    /** V8's --perf-basic-prof map of the profiled process, for addresses in JIT code. */
    private readonly perfMap: string | null = null,
  ) {}

  async resolve(addresses: Iterable<number>): Promise<Map<number, Frame>> {
    const byFile = new Map<string, { address: number; mapping: Mapping }[]>();
    const jit: number[] = [];
    for (const address of addresses) {
      if (this.frames.has(address)) continue;
      const mapping = findMapping(this.maps, address);
      if (!mapping || !isFileBacked(mapping)) {
        jit.push(address);
        continue;
      }
      let list = byFile.get(mapping.path);
      if (!list) byFile.set(mapping.path, (list = []));
      list.push({ address, mapping });
    }
    const jitNames = this.perfMap ? await perfMapNames(this.perfMap, jit) : new Map<number, string>();
    for (const address of jit) {
      const raw = jitNames.get(address);
      this.frames.set(address, { name: raw ? jitName(raw) : '[jit]', systemName: raw ?? '', mapping: null });
    }
    const found: { address: number; mapping: Mapping; systemName: string }[] = [];
    for (const [file, list] of byFile) {
      const elf = await elfOf(file);
      const known = names.get(file) ?? new Map<number, string>();
      names.set(file, known);
      const vaddrs = list.map((e) => (elf ? elf.toVaddr(e.mapping, e.address) : NaN));
      const missing = vaddrs.filter((v) => !Number.isNaN(v) && !known.has(v));
      if (elf && missing.length) {
        const got = await elf.lookup(missing).catch(() => new Map<number, string>());
        for (const v of missing) known.set(v, got.get(v) ?? '');
      }
      list.forEach((e, i) => found.push({ ...e, systemName: known.get(vaddrs[i]) ?? '' }));
    }
    const unique = [...new Set(found.map((t) => t.systemName))].filter(
      (s) => s.startsWith('_Z') && !demangled.has(s),
    );
    if (unique.length) {
      const out = this.demangle(unique);
      unique.forEach((s, i) => demangled.set(s, out[i] || s));
    }
    for (const t of found) {
      const name = t.systemName
        ? (demangled.get(t.systemName) ?? t.systemName)
        : `[unknown in ${path.basename(t.mapping.path)}]`;
      this.frames.set(t.address, { name, systemName: t.systemName, mapping: t.mapping });
    }
    return this.frames;
  }
}

const demangled = new Map<string, string>();
const names = new Map<string, Map<number, string>>();
const elfCache = new Map<string, Promise<ElfFile | null>>();

function elfOf(file: string): Promise<ElfFile | null> {
  let p = elfCache.get(file);
  if (!p) {
    p = ElfFile.open(file).catch(() => null);
    elfCache.set(file, p);
  }
  return p;
}
