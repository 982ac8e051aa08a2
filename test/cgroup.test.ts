// cgroupMemory() reads cgroup v2 and v1 trees: fake ones written here, this machine's own, and
// (as root) a real memory cgroup made for the test with a child process moved into it.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cgroupMemory, type CgroupMemory } from '../src';
import { MiB } from './helpers';
import { makeCgroup, noCgroupReason, startIpcChild } from './realcgroup';

const root = mkdtempSync(path.join(os.tmpdir(), 'fragstat-cgroup-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function write(dir: string, files: Record<string, string>): void {
  mkdirSync(path.join(root, dir), { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(root, dir, name), text);
}

write('', {
  'cgroup.controllers': 'cpu memory\n',
  'memory.pressure': 'some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n',
});
write('app.slice', {
  'cgroup.controllers': 'memory\n',
  'memory.max': `${512 * MiB}\n`,
  'memory.high': 'max\n',
});
write('app.slice/web.service', {
  'cgroup.controllers': 'memory\n',
  'memory.max': 'max\n',
  'memory.high': `${384 * MiB}\n`,
  'memory.current': `${300 * MiB}\n`,
  'memory.stat': `anon ${200 * MiB}\nfile ${90 * MiB}\nkernel 1234\n`,
  'memory.events': 'low 0\nhigh 17\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n',
  'memory.pressure':
    'some avg10=1.50 avg60=0.75 avg300=0.10 total=123456\nfull avg10=0.50 avg60=0.25 avg300=0.00 total=6543\n',
});

describe('a fake cgroup v2 tree', () => {
  it('reads limits (the lowest along the ancestors), usage, headroom, events and pressure', () => {
    const m = cgroupMemory({ root, path: '/app.slice/web.service' })!;
    expect(m.version).toBe(2);
    expect(m.directory).toBe(path.join(root, 'app.slice/web.service'));
    expect(m.maxBytes).toBe(512 * MiB); // set by the parent; the service itself says "max"
    expect(m.highBytes).toBe(384 * MiB);
    expect(m.currentBytes).toBe(300 * MiB);
    expect(m.headroomBytes).toBe(212 * MiB);
    expect(m.highHeadroomBytes).toBe(84 * MiB);
    expect(m.anonBytes).toBe(200 * MiB);
    expect(m.fileBytes).toBe(90 * MiB);
    expect(m.events).toEqual({ low: 0, high: 17, max: 3, oom: 1, oomKill: 1 });
    expect(m.pressure).toEqual({
      some: { avg10: 1.5, avg60: 0.75, avg300: 0.1, totalUs: 123456 },
      full: { avg10: 0.5, avg60: 0.25, avg300: 0, totalUs: 6543 },
    });
  });

  it('gives null headroom where nothing sets a limit, and null for what cannot be read', () => {
    const m = cgroupMemory({ root, path: '/' })!;
    expect(m).toMatchObject({
      maxBytes: null,
      highBytes: null,
      currentBytes: null,
      headroomBytes: null,
      events: null,
    });
    expect(m.pressure!.full).toBeNull();
    expect(cgroupMemory({ root, path: '/no/such/cgroup' })).toBeNull();
  });

  it('validates its options', () => {
    expect(() => cgroupMemory({ root: 1 } as never)).toThrow(
      /Expected a non-empty string for options.root but received number/,
    );
    expect(() => cgroupMemory({ mount: '/' } as never)).toThrow(/Unknown option "mount"/);
  });
});

// A v1 memory hierarchy as the kernel lays it out: "no limit" is the largest page-aligned counter.
const v1 = mkdtempSync(path.join(os.tmpdir(), 'fragstat-cgroup-v1-'));
afterAll(() => rmSync(v1, { recursive: true, force: true }));
const NONE = '9223372036854771712\n';
function writeV1(dir: string, files: Record<string, string>): void {
  mkdirSync(path.join(v1, dir), { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(v1, dir, name), text);
}
const v1Stat = (own: Record<string, number>, hierarchicalLimit: string) =>
  Object.entries(own)
    .map(([k, v]) => `${k} ${v}\ntotal_${k} ${v * 2}\n`)
    .join('') + `hierarchical_memory_limit ${hierarchicalLimit}`;
writeV1('', { 'memory.limit_in_bytes': NONE, 'memory.usage_in_bytes': `${900 * MiB}\n` });
writeV1('docker', { 'memory.limit_in_bytes': `${768 * MiB}\n`, 'memory.usage_in_bytes': `${400 * MiB}\n` });
writeV1('docker/web', {
  'memory.limit_in_bytes': NONE,
  'memory.soft_limit_in_bytes': `${256 * MiB}\n`,
  'memory.usage_in_bytes': `${300 * MiB}\n`,
  'memory.max_usage_in_bytes': `${350 * MiB}\n`,
  'memory.failcnt': '42\n',
  'memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n',
  // Own rss/cache half of total_* (the cgroup and its descendants): total_* are read.
  'memory.stat': v1Stat({ rss: 100 * MiB, cache: 45 * MiB }, `${768 * MiB}\n`),
});
// A container's view: its mount shows its own cgroup as the root, the limit set above it is only
// in hierarchical_memory_limit; an old kernel without oom_kill, no failcnt.
writeV1('container', {
  'memory.limit_in_bytes': NONE,
  'memory.soft_limit_in_bytes': NONE,
  'memory.usage_in_bytes': `${64 * MiB}\n`,
  'memory.oom_control': 'oom_kill_disable 0\nunder_oom 1\n',
  'memory.stat': `rss ${50 * MiB}\ncache ${10 * MiB}\nhierarchical_memory_limit ${128 * MiB}\n`,
});

describe('a fake cgroup v1 memory hierarchy', () => {
  it('reads the limit (the lowest along the ancestors), usage, peak, soft limit, stat and events', () => {
    const m = cgroupMemory({ root: v1, path: '/docker/web' })!;
    expect(m).toEqual({
      version: 1,
      path: '/docker/web',
      directory: path.join(v1, 'docker/web'),
      maxBytes: 768 * MiB, // set by the parent; the cgroup itself says "none"
      highBytes: null, // v1 has no memory.high; the soft limit is not one
      currentBytes: 300 * MiB,
      headroomBytes: 468 * MiB,
      highHeadroomBytes: null,
      anonBytes: 200 * MiB, // total_rss
      fileBytes: 90 * MiB, // total_cache
      peakBytes: 350 * MiB,
      softLimitBytes: 256 * MiB,
      underOom: false,
      events: { low: null, high: null, max: 42, oom: null, oomKill: 2 },
      pressure: null,
    });
  });

  it("takes hierarchical_memory_limit for ancestors above the mount, and the cgroup's own figures without total_*", () => {
    const m = cgroupMemory({ root: path.join(v1, 'container'), path: '/' })!;
    expect(m).toMatchObject({
      version: 1,
      maxBytes: 128 * MiB,
      currentBytes: 64 * MiB,
      headroomBytes: 64 * MiB,
      anonBytes: 50 * MiB,
      fileBytes: 10 * MiB,
      peakBytes: null,
      softLimitBytes: null,
      underOom: true,
      events: null,
    });
  });

  it('reports no limit where none is set, and null for a cgroup that is not there', () => {
    expect(cgroupMemory({ root: v1, path: '/' })).toMatchObject({
      version: 1,
      maxBytes: null,
      headroomBytes: null,
      currentBytes: 900 * MiB,
      events: null,
    });
    expect(cgroupMemory({ root: v1, path: '/no/such/cgroup' })).toBeNull();
  });
});

describe("this machine's cgroup", () => {
  const lines = readFileSync('/proc/self/cgroup', 'utf8').split('\n');
  const v1Line = lines.find((l) => /^\d+:([^:]*,)?memory(,[^:]*)?:/.test(l));
  const v2Line = lines.find((l) => l.startsWith('0::'));
  const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  const v1Mounted = mountinfo.some((l) => / - cgroup \S+ \S*\bmemory\b/.test(l));
  const v2Mounted = mountinfo.some((l) => l.includes(' - cgroup2 '));
  it.runIf((v1Line !== undefined && v1Mounted) || (v2Line !== undefined && v2Mounted))(
    'finds the memory controller /proc/self/cgroup names: v1 where a memory hierarchy is mounted, else v2',
    () => {
      const m = cgroupMemory();
      expect(m).not.toBeNull();
      const v1Here = v1Line !== undefined && v1Mounted;
      expect(m!.version).toBe(v1Here ? 1 : 2);
      expect(m!.path).toBe((v1Here ? v1Line! : v2Line!).replace(/^\d+:[^:]*:/, ''));
      if (m!.currentBytes !== null) {
        // This process is charged to its cgroup: at least its own resident anonymous memory.
        expect(m!.currentBytes).toBeGreaterThan(process.memoryUsage().heapUsed);
      }
      if (m!.maxBytes !== null) expect(m!.headroomBytes).toBe(m!.maxBytes - m!.currentBytes!);
    },
  );
});

describe.runIf(noCgroupReason === null)('a real memory cgroup (as root)', () => {
  it('reports the limit set on it, and usage that rises by what a child allocates and touches', async () => {
    const cg = makeCgroup(512 * MiB);
    const c = startIpcChild('cgroup-child.cjs');
    try {
      await c.next('ready');
      cg.add(c.child.pid!);
      const before = (await c.ask<{ cgroup: CgroupMemory }>({ cmd: 'read' }, 'read')).cgroup;
      expect(before).toMatchObject({ version: cg.version, directory: cg.dir, maxBytes: 512 * MiB });
      if (cg.version === 1) expect(before.highBytes).toBeNull();
      const after = (await c.ask<{ cgroup: CgroupMemory }>({ cmd: 'alloc', mib: 64 }, 'alloc')).cgroup;
      // 64 MiB touched: charged to the cgroup, give or take the kernel's per-CPU charge batches
      // and what V8 and the IPC channel allocate meanwhile.
      const grew = after.currentBytes! - before.currentBytes!;
      expect(grew).toBeGreaterThan(62 * MiB);
      expect(grew).toBeLessThan(80 * MiB);
      expect(after.anonBytes! - before.anonBytes!).toBeGreaterThan(62 * MiB);
      expect(after.headroomBytes).toBe(512 * MiB - after.currentBytes!);
      expect(after.peakBytes).toBeGreaterThanOrEqual(after.currentBytes!);
      // What the cgroup's own file says now is within a few MiB of what the child read.
      expect(Math.abs(cg.usageBytes() - after.currentBytes!)).toBeLessThan(4 * MiB);
      c.child.send({ cmd: 'exit' });
      expect((await c.exited).code).toBe(0);
    } finally {
      c.child.kill('SIGKILL');
      await c.exited;
      cg.remove();
    }
  });

  it('gates auto-trim on the limit: nothing trimmed with room to spare, a trim once the limit is near', async () => {
    const cg = makeCgroup(2048 * MiB);
    const file = path.join(root, 'page-cache');
    const c = startIpcChild('cgroup-child.cjs');
    try {
      await c.next('ready');
      cg.add(c.child.pid!);
      // 300 MiB of clean page cache charged to the cgroup: a tight limit later reclaims it
      // rather than kill the child.
      const cached = (await c.ask<{ cgroup: CgroupMemory }>({ cmd: 'cache', mib: 300, file }, 'cache'))
        .cgroup;
      expect(cached.fileBytes).toBeGreaterThan(250 * MiB);
      // 48 MiB of holes against a 256 MiB floor: no trim with 1.6 GiB left (thirty samples).
      const holes = (await c.ask<{ cgroup: CgroupMemory }>({ cmd: 'holes' }, 'holes')).cgroup;
      expect(holes.maxBytes).toBe(2048 * MiB);
      await expect(c.next('trim', 3000)).rejects.toThrow(/no "trim" message/);
      // About 3% of the limit left: the floor falls below the holes.
      cg.setLimit(cg.usageBytes() + 12 * MiB);
      const t = await c.next<{ releasedBytes: number }>('trim', 30_000);
      expect(t.releasedBytes).toBeGreaterThan(24 * MiB);
      c.child.send({ cmd: 'exit' });
      expect((await c.exited).code).toBe(0);
    } finally {
      c.child.kill('SIGKILL');
      await c.exited;
      cg.remove();
      rmSync(file, { force: true });
    }
  });
});
