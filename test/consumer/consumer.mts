// Type-checked by test/package.test.ts as an ES module consumer would write it.
import { allocator, snapshot, snapshotAsync, trim, trimSync, type Snapshot } from 'fragstat';
import fragstat from 'fragstat';

const s: Snapshot = snapshot();
const t = trimSync();
const released: number | null = t.releasedBytes;
const later: Snapshot = await snapshotAsync({ detail: false });
const r = await trim();
console.log(allocator().version, s.heapBytes, released, later.arenas, r.durationMs);

// @ts-expect-error rssBytes is a number or null, not a string
const bad: string = s.rssBytes;
console.log(bad);

// The default export is the same API.
const viaDefault: Snapshot = fragstat.snapshot();
console.log(viaDefault.rssBytes);
