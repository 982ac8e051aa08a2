// Type-checked by test/package.test.ts as a CommonJS consumer would write it.
import fragstat = require('fragstat');
import type { Snapshot, TrimResult, AllocatorName } from 'fragstat';

const name: AllocatorName = fragstat.allocator().name;
const s: Snapshot = fragstat.snapshot({ detail: true });
const bytes: number | null = s.allocatedBytes;
const frag: number | null = s.ratios.fragmentation;
const arena0 = s.detail?.arenas[0]?.largestFreeBytes;
void fragstat.trim().then((t: TrimResult) => t.releasedBytes);
void fragstat.snapshotAsync().then((a) => a.rssBytes);
console.log(name, bytes, frag, arena0);

// @ts-expect-error detail is a boolean
fragstat.snapshot({ detail: 'yes' });
// @ts-expect-error unknown option
fragstat.snapshot({ interval: 1 });
// @ts-expect-error allocator names are a closed set
const wrong: AllocatorName = 'dlmalloc';
console.log(wrong);
