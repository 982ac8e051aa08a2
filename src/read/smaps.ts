// /proc/self/smaps parsing and what the kernel's view of each mapping tells about who owns it.
// No N-API here: plain text in, plain figures out. Linux only; every reader returns null where
// /proc is not readable.
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

/** One mapping of /proc/self/smaps: address range, permissions, backing file and resident bytes. */
export interface Mapping {
  start: number;
  end: number;
  /** e.g. 'rw-p', 'r-xp', '---p'. */
  perms: string;
  /** '' for anonymous memory, a file path, or a kernel name such as '[heap]' or '[stack]'. */
  path: string;
  /** Resident bytes (`Rss:`). */
  rssBytes: number;
  /** Resident bytes not backed by a file (`Anonymous:`): private copies of file pages included. */
  anonymousBytes: number;
}

const KB = 1024;

/** The mappings of a process and the kernel's base page size. */
export interface Smaps {
  maps: Mapping[];
  /** `KernelPageSize:` of the first mapping (4096 on x64; 4096, 16384 or 65536 on arm64). */
  pageSize: number;
}

/** Parses the text of /proc/<pid>/smaps. Fields other than Rss and Anonymous are skipped. */
export function parseSmaps(text: string): Smaps {
  const out: Mapping[] = [];
  let pageSize = 0;
  let cur: Mapping | null = null;
  let pos = 0;
  const n = text.length;
  while (pos < n) {
    let eol = text.indexOf('\n', pos);
    if (eol < 0) eol = n;
    const c = text.charCodeAt(pos);
    const isHex = (c >= 48 && c <= 57) || (c >= 97 && c <= 102);
    if (isHex) {
      // "start-end perms offset dev inode   path"
      const dash = text.indexOf('-', pos);
      const sp1 = text.indexOf(' ', dash);
      if (dash > pos && sp1 > dash && sp1 < eol) {
        const perms = text.slice(sp1 + 1, sp1 + 5);
        // Skip offset, dev and inode, then the padding before the path.
        let p = sp1 + 6;
        for (let field = 0; field < 3; field++) {
          const sp = text.indexOf(' ', p);
          p = sp < 0 || sp > eol ? eol : sp + 1;
        }
        while (p < eol && text.charCodeAt(p) === 32) p++;
        cur = {
          start: parseInt(text.slice(pos, dash), 16),
          end: parseInt(text.slice(dash + 1, sp1), 16),
          perms,
          path: text.slice(p, eol),
          rssBytes: 0,
          anonymousBytes: 0,
        };
        out.push(cur);
      }
    } else if (cur !== null) {
      if (text.startsWith('Rss:', pos)) cur.rssBytes = kbField(text, pos + 4, eol);
      else if (text.startsWith('Anonymous:', pos)) cur.anonymousBytes = kbField(text, pos + 10, eol);
      else if (pageSize === 0 && text.startsWith('KernelPageSize:', pos))
        pageSize = kbField(text, pos + 15, eol);
    }
    pos = eol + 1;
  }
  return { maps: out, pageSize: pageSize || 4096 };
}

function kbField(text: string, from: number, eol: number): number {
  let v = 0;
  for (let i = from; i < eol; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d >= 0 && d <= 9) v = v * 10 + d;
    else if (v > 0) break;
  }
  return v * KB;
}

/** Reads bytes of this process's own memory (/proc/self/mem) and page residency (pagemap). */
export interface MemoryReader {
  /** Two machine words at `address`, or null when unreadable. */
  words(address: number): [bigint, bigint, bigint, bigint] | null;
  /** Resident bytes in [start, end), or null when pagemap cannot be read. */
  residentBytes(start: number, end: number): number | null;
  close(): void;
}

/** A MemoryReader over /proc/self/mem and /proc/self/pagemap; null where they cannot be opened. */
export function openMemoryReader(pageSize: number): MemoryReader | null {
  let mem = -1;
  let pagemap = -1;
  try {
    mem = openSync('/proc/self/mem', 'r');
  } catch {
    return null;
  }
  try {
    pagemap = openSync('/proc/self/pagemap', 'r');
  } catch {
    pagemap = -1;
  }
  const buf = Buffer.alloc(32);
  return {
    words(address) {
      try {
        if (readSync(mem, buf, 0, 32, address) !== 32) return null;
      } catch {
        return null; // unmapped since smaps was read, or not readable
      }
      return [
        buf.readBigUInt64LE(0),
        buf.readBigUInt64LE(8),
        buf.readBigUInt64LE(16),
        buf.readBigUInt64LE(24),
      ];
    },
    residentBytes(start, end) {
      if (pagemap < 0) return null;
      const pages = Math.ceil((end - start) / pageSize);
      const chunk = Buffer.alloc(Math.min(pages, 8192) * 8);
      let present = 0;
      for (let done = 0; done < pages;) {
        const count = Math.min(pages - done, chunk.length / 8);
        let got: number;
        try {
          got = readSync(pagemap, chunk, 0, count * 8, ((start / pageSize + done) * 8) as number);
        } catch {
          return null;
        }
        if (got <= 0) return null;
        // Bit 63 of each little-endian entry: page present in RAM.
        for (let i = 7; i < got; i += 8) if (chunk[i] & 0x80) present++;
        done += Math.floor(got / 8);
      }
      return present * pageSize;
    },
    close() {
      closeSync(mem);
      if (pagemap >= 0) closeSync(pagemap);
    },
  };
}

/** glibc's HEAP_MAX_SIZE on 64-bit: every thread-arena heap is a mapping aligned to it. */
export const GLIBC_HEAP_MAX = 64 * 1024 * 1024;

/** Where glibc malloc's memory is, and how much of it is resident. Sizes in bytes. */
export interface GlibcResidency {
  /** Resident bytes of the main arena ([heap], grown with brk). */
  mainArenaRssBytes: number;
  /** Size of the arenas' mappings found ([heap] and thread-arena heaps), resident or not. */
  arenaMappedBytes: number;
  /** Resident bytes of every thread-arena heap (64 MiB-aligned mappings with a heap_info header). */
  threadArenaRssBytes: number;
  threadArenaHeaps: number;
  /** Resident bytes of chunks glibc mmapped on their own (large allocations). */
  mmapRssBytes: number;
  /** Their size as found in their headers (compare with mallinfo2's hblkhd). */
  mmapBytes: number;
  mmapChunks: number;
  /** Indices of the mappings above, so a caller does not count them twice. */
  claimed: Set<number>;
}

const U = (x: bigint) => Number(x);

/**
 * Finds glibc malloc's mappings among `maps`: [heap]; thread-arena heaps (an rw anonymous mapping
 * at a 64 MiB boundary whose heap_info header says it has exactly that many bytes made
 * read-write); and mmapped chunks (anonymous mappings that start with a chunk header flagged
 * IS_MMAPPED, one after the other). Reads a few words of each anonymous mapping through `mem`,
 * until it has found `mmapChunksExpected` chunks (mallinfo2's hblks): a process with a big V8 heap
 * has thousands of anonymous mappings, and most processes have few mmapped chunks.
 */
export function findGlibcMemory(
  maps: Mapping[],
  mem: MemoryReader,
  pageSize: number,
  mmapChunksExpected = Infinity,
): GlibcResidency {
  const r: GlibcResidency = {
    mainArenaRssBytes: 0,
    arenaMappedBytes: 0,
    threadArenaRssBytes: 0,
    threadArenaHeaps: 0,
    mmapRssBytes: 0,
    mmapBytes: 0,
    mmapChunks: 0,
    claimed: new Set(),
  };
  for (let i = 0; i < maps.length; i++) {
    const m = maps[i];
    if (m.path === '[heap]') {
      r.mainArenaRssBytes += m.rssBytes;
      r.arenaMappedBytes += m.end - m.start;
      r.claimed.add(i);
      continue;
    }
    if (m.path !== '' || m.perms !== 'rw-p') continue;
    const len = m.end - m.start;
    if (m.start % GLIBC_HEAP_MAX === 0 && len <= GLIBC_HEAP_MAX) {
      // heap_info { mstate ar_ptr; heap_info *prev; size_t size; size_t mprotect_size; ... }
      const w = mem.words(m.start);
      if (w && w[0] !== 0n && U(w[3]) === len && U(w[2]) > 0 && U(w[2]) <= len) {
        r.threadArenaRssBytes += m.rssBytes;
        r.arenaMappedBytes += m.end - m.start;
        r.threadArenaHeaps++;
        r.claimed.add(i);
        continue;
      }
    }
    // A run of mmapped chunks: prev_size 0, size a whole number of pages with only IS_MMAPPED set.
    if (r.mmapChunks >= mmapChunksExpected) continue;
    let off = 0;
    let chunks = 0;
    while (off < len) {
      const w = mem.words(m.start + off);
      if (!w || w[0] !== 0n || (w[1] & 7n) !== 2n) break;
      const size = U(w[1] & ~7n);
      if (size === 0 || size % pageSize !== 0 || off + size > len) break;
      off += size;
      chunks++;
    }
    if (chunks === 0) continue;
    const resident = off === len ? m.rssBytes : mem.residentBytes(m.start, m.start + off);
    if (resident === null) continue;
    r.mmapRssBytes += resident;
    r.mmapBytes += off;
    r.mmapChunks += chunks;
    if (off === len) r.claimed.add(i);
    else m.rssBytes -= resident; // the rest of the mapping stays for others to claim
  }
  return r;
}

/** True for thread stacks: an rw anonymous mapping right after a no-access guard mapping. */
export function isThreadStack(maps: Mapping[], i: number): boolean {
  const m = maps[i];
  if (m.path !== '' || m.perms !== 'rw-p' || i === 0) return false;
  const g = maps[i - 1];
  return g.perms === '---p' && g.path === '' && g.end === m.start && g.end - g.start <= 64 * 1024;
}

const SMAPS = '/proc/self/smaps';

/** The mappings of this process now, or null where /proc/self/smaps cannot be read. */
export function readSmaps(): Smaps | null {
  try {
    return parseSmaps(readFileSync(SMAPS, 'latin1'));
  } catch {
    return null;
  }
}

/** readSmaps() with the read on a libuv pool thread (the parse, about 0.3 ms per 100 mappings, is not). */
export async function readSmapsAsync(): Promise<Smaps | null> {
  try {
    return parseSmaps(await readFile(SMAPS, 'latin1'));
  } catch {
    return null;
  }
}

/**
 * glibc's resident free memory: the resident pages of its arenas less the bytes live in them
 * (mallinfo2's uordblks; mmapped chunks are always live). Null where the mappings could not be read.
 */
export function glibcResidentFree(
  smaps: Smaps | null,
  raw: Record<string, number | null>,
): { residency: GlibcResidency; residentFreeBytes: number } | null {
  const uordblks = raw.uordblks;
  if (smaps === null || uordblks == null) return null;
  const mem = openMemoryReader(smaps.pageSize);
  if (mem === null) return null;
  try {
    const residency = findGlibcMemory(smaps.maps, mem, smaps.pageSize, raw.hblks ?? Infinity);
    const arenas = residency.mainArenaRssBytes + residency.threadArenaRssBytes;
    return { residency, residentFreeBytes: Math.max(0, arenas - uordblks) };
  } finally {
    mem.close();
  }
}

/**
 * This process's anonymous resident memory (RssAnon in /proc/self/status: RSS less file-backed
 * and shared pages), bytes; null where the kernel does not give it. One read of a /proc file: 58 us
 * measured on a VM whose system calls are slow.
 */
export function readAnonymousRss(): number | null {
  try {
    const m = /^RssAnon:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'latin1'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}
