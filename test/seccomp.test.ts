// fragstat under a systemd-style system call filter: a service unit with
// SystemCallFilter=@system-service is killed (SIGSYS) by the first call outside that set. The
// launcher (test/native/seccomp-run.c, libseccomp) kills on every call it knows that is not in
// test/fixtures/system-service-syscalls.txt (systemd 252's set, scripts/system-service-syscalls.mjs),
// plus pkey_alloc, which Node 20's own start-up calls (systemd's @pkey). Under it a child makes a
// thread arena top worth releasing and trims 25 times over 2.5 s: it must live, and the
// thread-arena step must report numbers, having released that top. Where the filter refuses a call
// the step needs with EPERM instead, the step reports null (unknown), not 0.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MiB, root } from './helpers';

const list = path.join(root, 'test/fixtures/system-service-syscalls.txt');
const work = mkdtempSync(path.join(os.tmpdir(), 'fragstat-seccomp-'));
const launcher = path.join(work, 'seccomp-run');
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Builds the launcher; a machine without libseccomp skips, unless FRAGSTAT_REQUIRE_SYSTEM=1. */
function buildLauncher(): boolean {
  const cc = spawnSync('cc', [path.join(root, 'test/native/seccomp-run.c'), '-lseccomp', '-o', launcher], {
    encoding: 'utf8',
  });
  if (cc.status === 0) return true;
  const msg = `libseccomp is not installed (Debian: apt-get install libseccomp-dev): ${cc.stderr ?? cc.error}`;
  if (process.env.FRAGSTAT_REQUIRE_SYSTEM === '1')
    throw new Error(`${msg}, and FRAGSTAT_REQUIRE_SYSTEM=1 requires it`);
  console.warn(`skipping the seccomp tests: ${msg}`);
  return false;
}

// A filter wraps this process's Node only: an emulated Node (FRAGSTAT_TEST_NODE_ARCH) would filter
// the emulator's calls instead, and the step exists under glibc on x64 and arm64 only.
const runs =
  process.platform === 'linux' &&
  !process.env.FRAGSTAT_TEST_NODE_ARCH &&
  !process.env.FRAGSTAT_HIDE_LIBRARIES;

interface Trims {
  allocator: string;
  trimsThreadArenaTops: boolean;
  tops: (number | null)[];
  released: number[];
}

function underFilter(extra: string[], args: string[]) {
  const env: Record<string, string | undefined> = { ...process.env };
  delete env.LD_PRELOAD;
  const r = spawnSync(launcher, [list, '--allow', 'pkey_alloc', ...extra, '--', ...args], {
    cwd: root,
    env,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

function trims(extra: string[]): Trims {
  const r = underFilter(extra, [
    process.execPath,
    '--expose-gc',
    path.join(root, 'test/fixtures/seccomp-trim.cjs'),
  ]);
  if (r.code !== 0) throw new Error(`seccomp-trim.cjs exited with ${r.code ?? r.signal}\n${r.stderr}`);
  const t = JSON.parse(r.stdout) as Trims;
  expect(t).toMatchObject({ allocator: 'glibc', trimsThreadArenaTops: true });
  expect(t.tops).toHaveLength(25);
  return t;
}

describe.runIf(runs && buildLauncher())(
  'under a SystemCallFilter=@system-service filter (systemd 252)',
  () => {
    it('the filter kills a process on a call outside the set (mincore)', () => {
      const src = path.join(work, 'mincore.c');
      writeFileSync(
        src,
        '#include <sys/mman.h>\n#include <unistd.h>\nint main(void) { unsigned char v; ' +
          'return mincore((void *)((unsigned long)&v & ~4095UL), 4096, &v); }\n',
      );
      expect(spawnSync('cc', [src, '-o', `${src}.bin`]).status).toBe(0);
      const r = underFilter([], [`${src}.bin`]);
      expect(r.signal).toBe('SIGSYS');
    });

    it('trim() and trimSync() live, and the thread-arena step releases a top', () => {
      const t = trims([]);
      for (const top of t.tops) expect(typeof top).toBe('number');
      // The worker's 16 MiB top, released once the step has seen its arena a second before.
      expect(Math.max(...(t.tops as number[]))).toBeGreaterThanOrEqual(15 * MiB);
    });

    it('reports null where pread of /proc/self/mem is refused with EPERM', () => {
      // Offsets of 4 GiB and up: heap addresses in /proc/self/mem, not the libraries ld.so reads.
      const t = trims(['--errno', 'pread64@3>=4294967296']);
      expect(t.tops.every((top) => top === null)).toBe(true);
    });

    it('reports null where madvise(MADV_DONTNEED) of 8 MiB or more is refused with EPERM', () => {
      // Smaller ranges stay allowed: V8 aborts when its own madvise fails.
      const t = trims(['--errno', 'madvise@2=4@1>=8388608']);
      // 0 while the arena is too new to touch; null from the first trim that tries to release it.
      expect(t.tops.every((top) => top === null || top === 0)).toBe(true);
      expect(t.tops).toContain(null);
    });
  },
);
