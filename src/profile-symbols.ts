// Native frames to function names, in-process: the mappings of /proc/self/maps (or the copy a heap
// dump carries), and the ELF symbol tables (.symtab and .dynsym) of each mapped object, read from
// disk with positioned reads of the headers and the two tables only (the node binary is ~100 MB;
// its symbol tables a few). No N-API here: demangling is passed in.
import { open, type FileHandle } from 'node:fs/promises';

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

/** One ELF object's function symbols, sorted by address, with what load-bias arithmetic needs. */
export class ElfSymbols {
  private constructor(
    readonly segments: Segment[],
    private readonly values: Float64Array,
    private readonly ends: Float64Array,
    private readonly names: string[],
  ) {}

  get size(): number {
    return this.values.length;
  }

  /** Reads the ELF headers and symbol tables of `file`. Throws when it is not a 64-bit little-endian ELF. */
  static async load(file: string): Promise<ElfSymbols> {
    const fh = await open(file, 'r');
    try {
      return await ElfSymbols.read(fh, file);
    } finally {
      await fh.close();
    }
  }

  private static async read(fh: FileHandle, file: string): Promise<ElfSymbols> {
    const at = async (position: number, length: number): Promise<Buffer> => {
      const buf = Buffer.alloc(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await fh.read(buf, done, length - done, position + done);
        if (bytesRead === 0) throw new Error(`${file}: truncated at ${position + done}`);
        done += bytesRead;
      }
      return buf;
    };
    const eh = await at(0, 64);
    if (eh.readUInt32BE(0) !== 0x7f454c46 || eh[4] !== 2 || eh[5] !== 1) {
      throw new Error(`${file}: not a 64-bit little-endian ELF object`);
    }
    const n = (b: Buffer, off: number) => Number(b.readBigUInt64LE(off));
    const phoff = n(eh, 0x20);
    const shoff = n(eh, 0x28);
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
        segments.push({ offset: n(ph, o + 8), vaddr: n(ph, o + 16), filesz: n(ph, o + 32) });
      }
    }

    const entries: { value: number; end: number; name: number; table: number }[] = [];
    const strtabs: Buffer[] = [];
    if (shnum > 0 && shoff > 0) {
      const sh = await at(shoff, shentsize * shnum);
      const section = (i: number) => {
        const o = i * shentsize;
        return {
          type: sh.readUInt32LE(o + 4),
          offset: n(sh, o + 24),
          size: n(sh, o + 32),
          link: sh.readUInt32LE(o + 40),
        };
      };
      for (let i = 0; i < shnum; i++) {
        const s = section(i);
        if (s.type !== 2 && s.type !== 11) continue; // SHT_SYMTAB, SHT_DYNSYM
        if (s.link >= shnum) continue;
        const strs = section(s.link);
        const symbols = await at(s.offset, s.size);
        const strings = await at(strs.offset, strs.size);
        const table = strtabs.push(strings) - 1;
        for (let o = 0; o + 24 <= symbols.length; o += 24) {
          const type = symbols[o + 4] & 0xf;
          // STT_FUNC, STT_GNU_IFUNC, and STT_NOTYPE (V8's embedded builtins are untyped labels)
          if (type !== 2 && type !== 10 && type !== 0) continue;
          if (symbols.readUInt16LE(o + 6) === 0) continue; // SHN_UNDEF
          const value = n(symbols, o + 8);
          const name = symbols.readUInt32LE(o);
          if (value === 0 || name === 0) continue;
          const size = n(symbols, o + 16);
          entries.push({ value, end: size > 0 ? value + size : 0, name, table });
        }
      }
    }
    // Sized symbols win over unsized ones at the same address, then the longer one.
    entries.sort((a, b) => a.value - b.value || Number(b.end > 0) - Number(a.end > 0) || b.end - a.end);
    const values: number[] = [];
    const ends: number[] = [];
    const names: string[] = [];
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i];
      if (values.length && values[values.length - 1] === e.value) continue;
      const strings = strtabs[e.table];
      const stop = strings.indexOf(0, e.name);
      const name = strings.toString('latin1', e.name, stop < 0 ? strings.length : stop);
      if (name.startsWith('.L') || name.startsWith('$')) continue;
      values.push(e.value);
      // An unsized symbol reaches to the next one.
      ends.push(e.end > 0 ? e.end : Infinity);
      names.push(name);
    }
    for (let i = 0; i < ends.length; i++) {
      if (ends[i] === Infinity) ends[i] = i + 1 < values.length ? values[i + 1] : values[i] + 1;
    }
    return new ElfSymbols(segments, Float64Array.from(values), Float64Array.from(ends), names);
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

  /** The (mangled) name of the function that holds `vaddr`, or null. */
  lookup(vaddr: number): string | null {
    let lo = 0;
    let hi = this.values.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.values[mid] <= vaddr) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (found < 0 || vaddr >= this.ends[found]) return null;
    return this.names[found];
  }
}

export interface Frame {
  /** Demangled function name; `[unknown]` inside a known object, `[jit]` outside any file. */
  name: string;
  /** The symbol as the object names it (mangled), '' when unknown. */
  systemName: string;
  /** The file-backed mapping the address falls in, or null. */
  mapping: Mapping | null;
}

/**
 * Resolves addresses against one set of mappings. Symbol tables are cached per file path for the life
 * of the process; frames are cached per address within this symbolizer (one set of mappings).
 */
export class Symbolizer {
  private readonly frames = new Map<number, Frame>();
  constructor(
    readonly maps: Mapping[],
    private readonly demangle: (names: string[]) => string[],
  ) {}

  async resolve(addresses: Iterable<number>): Promise<Map<number, Frame>> {
    const todo: { address: number; mapping: Mapping | null; systemName: string }[] = [];
    for (const address of addresses) {
      if (this.frames.has(address)) continue;
      const mapping = findMapping(this.maps, address);
      let systemName = '';
      if (mapping && isFileBacked(mapping)) {
        const symbols = await symbolsOf(mapping.path);
        if (symbols) systemName = symbols.lookup(symbols.toVaddr(mapping, address)) ?? '';
      }
      todo.push({ address, mapping: mapping && isFileBacked(mapping) ? mapping : null, systemName });
    }
    const unique = [...new Set(todo.map((t) => t.systemName).filter((s) => s.startsWith('_Z')))].filter(
      (s) => !demangled.has(s),
    );
    if (unique.length) {
      const out = this.demangle(unique);
      unique.forEach((s, i) => demangled.set(s, out[i] || s));
    }
    for (const t of todo) {
      const name = t.systemName
        ? (demangled.get(t.systemName) ?? t.systemName)
        : t.mapping
          ? `[unknown in ${t.mapping.path.split('/').pop()}]`
          : '[jit]';
      this.frames.set(t.address, { name, systemName: t.systemName, mapping: t.mapping });
    }
    return this.frames;
  }
}

const demangled = new Map<string, string>();
const elfCache = new Map<string, Promise<ElfSymbols | null>>();

function symbolsOf(file: string): Promise<ElfSymbols | null> {
  let p = elfCache.get(file);
  if (!p) {
    p = ElfSymbols.load(file).catch(() => null);
    elfCache.set(file, p);
  }
  return p;
}
