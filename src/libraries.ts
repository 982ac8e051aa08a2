// Where each allocator's shared library lives, and how to install it when it does not.
import { existsSync } from 'node:fs';
import * as path from 'node:path';

export type Preloadable = 'jemalloc' | 'tcmalloc' | 'mimalloc';

export const libraries: Record<Preloadable, { files: string[]; install: string }> = {
  jemalloc: {
    files: ['libjemalloc.so.2', 'libjemalloc.so'],
    install:
      'Debian/Ubuntu: apt-get install libjemalloc2; Fedora: dnf install jemalloc; Alpine: apk add jemalloc',
  },
  tcmalloc: {
    files: ['libtcmalloc_minimal.so.4', 'libtcmalloc.so.4', 'libtcmalloc_minimal.so'],
    install: 'Debian/Ubuntu: apt-get install libtcmalloc-minimal4; Fedora: dnf install gperftools-libs',
  },
  mimalloc: {
    files: ['libmimalloc.so.2', 'libmimalloc.so'],
    install: 'Debian/Ubuntu: apt-get install libmimalloc2.0; Fedora: dnf install mimalloc',
  },
};

/** Directories searched, in order; FRAGSTAT_LIB_PATH (colon-separated) comes first. */
export function libraryDirs(): string[] {
  const triplet = process.arch === 'arm64' ? 'aarch64-linux-gnu' : 'x86_64-linux-gnu';
  const extra = (process.env.FRAGSTAT_LIB_PATH ?? '').split(':').filter(Boolean);
  return [
    ...extra,
    `/usr/lib/${triplet}`,
    `/lib/${triplet}`,
    '/usr/lib64',
    '/usr/lib',
    '/usr/local/lib',
    '/lib',
  ];
}

/**
 * Absolute path of the library that provides `name`, or null. FRAGSTAT_HIDE_LIBRARIES=1 makes every
 * library look absent (how the tests reproduce a machine without the optional allocators).
 */
export function findLibrary(name: Preloadable, dirs = libraryDirs()): string | null {
  if (process.env.FRAGSTAT_HIDE_LIBRARIES === '1') return null;
  for (const dir of dirs) {
    for (const file of libraries[name].files) {
      const p = path.join(dir, file);
      if (existsSync(p)) return p;
    }
  }
  return null;
}
