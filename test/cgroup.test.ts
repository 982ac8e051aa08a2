// cgroupMemory() reads a cgroup v2 tree: a fake one written here, and this machine's own.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cgroupMemory } from '../src';
import { MiB } from './helpers';

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

describe("this machine's cgroup", () => {
  const line = readFileSync('/proc/self/cgroup', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('0::'));
  it.runIf(line !== undefined)(
    'finds the cgroup /proc/self/cgroup names, where a cgroup2 mount exists',
    () => {
      const m = cgroupMemory();
      const mounted = readFileSync('/proc/self/mountinfo', 'utf8').includes(' - cgroup2 ');
      if (!mounted) {
        expect(m).toBeNull();
        return;
      }
      expect(m).not.toBeNull();
      expect(m!.path).toBe(line!.slice(3));
      if (m!.currentBytes !== null) {
        // This process is charged to its cgroup: at least its own resident anonymous memory.
        expect(m!.currentBytes).toBeGreaterThan(process.memoryUsage().heapUsed);
      }
      if (m!.maxBytes !== null) expect(m!.headroomBytes).toBe(m!.maxBytes - m!.currentBytes!);
    },
  );
});
