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

/**
 * The command that runs this process under jemalloc, with the library found on this system and
 * its script path (its other arguments are left out as `[arguments]`: they can hold secrets), and
 * jemalloc's background purge thread on: without it, jemalloc decays freed pages only while it
 * is called, so a service that goes idle keeps them (docs/STAIRSTEP.md measures both).
 */
export function jemallocCommand(): string {
  const lib = findLibrary('jemalloc');
  // Only the program and its script: the other arguments can hold secrets (--db-url=...), and
  // this text ends up in logs. A placeholder says where they go.
  const script = process.argv[1];
  const rest = process.argv.length > 2 ? ' [arguments]' : '';
  const cmd =
    [process.execPath.split('/').pop()!, ...(script ? [script] : [])].map(shellQuote).join(' ') + rest;
  // MALLOC_CONF is comma-separated key:value pairs: keep the user's, with background_thread true.
  const pairs = (process.env.MALLOC_CONF ?? '')
    .split(',')
    .filter((p) => p !== '' && !p.startsWith('background_thread:'));
  const conf = [...pairs, 'background_thread:true'].join(',');
  const env = `MALLOC_CONF=${shellQuote(conf)} LD_PRELOAD=${shellQuote(lib ?? '/path/to/libjemalloc.so.2')}`;
  return lib ? `${env} ${cmd}` : `install jemalloc (${libraries.jemalloc.install}), then ${env} ${cmd}`;
}

/** `s` as one POSIX shell word: unchanged when it is plain, else single-quoted. */
function shellQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
