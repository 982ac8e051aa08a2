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

/** What jemallocCommand reads of a process: process.argv, process.execArgv, its cwd and node's path. */
export interface ProcessShape {
  argv: readonly string[];
  execArgv: readonly string[];
  cwd: string;
  execPath: string;
}

// Node flags that take their value as the next argument: that value (code, a module path, a file)
// is never copied, and never mistaken for a flag.
const valueFlags = new Set([
  '-e',
  '--eval',
  '-p',
  '--print',
  '-pe',
  '-ep',
  '-r',
  '--require',
  '--import',
  '--loader',
  '--experimental-loader',
  '-C',
  '--conditions',
  '--env-file',
  '--input-type',
  '--title',
  '--disable-warning',
  '--inspect-port',
  '--redirect-warnings',
  '--openssl-config',
  '--icu-data-dir',
]);
// Flags that code given on the command line comes with: there is no script to name.
const evalFlag = /^(-e|--eval|-p|--print|-pe|-ep)(=|$)/;
// The node flags copied: ones that shape memory and hold nothing but a number. Any other flag can
// name a file or carry a value worth keeping out of logs (--require /etc/app/secrets.js,
// --env-file, --title): left out, with the arguments.
const keptFlag = /^--(max[-_]old[-_]space[-_]size|max[-_]semi[-_]space[-_]size)=\d+$|^--expose[-_]gc$/;

/**
 * The command that runs this process under jemalloc, with the library found on this system and
 * jemalloc's background purge thread on: without it, jemalloc decays freed pages only while it is
 * called, so a service that goes idle keeps them (docs/STAIRSTEP.md measures both). This text ends
 * up in logs and reports, so it repeats nothing of the command line that could hold a secret: only
 * the script's path (relative to the working directory when under it) and the memory-size flags
 * above. The user's arguments, other node flags, and code given with -e/-p are left out, and a
 * shell comment after the command says to add them back, so the command runs as printed.
 */
export function jemallocCommand(): string {
  return jemallocCommandFor({
    argv: process.argv,
    execArgv: process.execArgv,
    cwd: process.cwd(),
    execPath: process.execPath,
  });
}

/** jemallocCommand() for a given process shape (exported for the tests). */
export function jemallocCommandFor(p: ProcessShape): string {
  const lib = findLibrary('jemalloc');
  const flags: string[] = [];
  let dropped = false;
  let evaluated = false;
  for (let i = 0; i < p.execArgv.length; i++) {
    const a = p.execArgv[i];
    if (evalFlag.test(a)) evaluated = true;
    else if (keptFlag.test(a)) flags.push(a);
    else dropped = true;
    if (valueFlags.has(a)) i++; // its value: never looked at, never copied
  }
  // node - (the script from stdin) and node -e have no script path; argv[1] is then an argument.
  const script = !evaluated && p.argv[1] !== undefined && p.argv[1] !== '-' ? p.argv[1] : null;
  const stdin = !evaluated && p.argv[1] === '-';
  const args = p.argv.length > (script !== null || stdin ? 2 : 1);
  const words = [path.basename(p.execPath), ...flags];
  if (script !== null) {
    const rel = path.relative(p.cwd, script);
    const shown =
      path.isAbsolute(script) && rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : script;
    words.push(shown.startsWith('-') ? `./${shown}` : shown);
  }
  const missing = [
    evaluated ? 'your -e/-p code' : stdin ? 'your script on stdin' : null,
    dropped ? `your ${flags.length ? 'other ' : ''}node flags` : null,
    args ? 'your arguments' : null,
  ].filter((x): x is string => x !== null);
  const cmd = words.map(shellQuote).join(' ') + (missing.length ? `  # plus ${missing.join(', ')}` : '');
  // MALLOC_CONF is comma-separated key:value pairs: keep the user's, with background_thread true.
  const pairs = (process.env.MALLOC_CONF ?? '')
    .split(',')
    .filter((x) => x !== '' && !x.startsWith('background_thread:'));
  const conf = [...pairs, 'background_thread:true'].join(',');
  const env = `MALLOC_CONF=${shellQuote(conf)} LD_PRELOAD=${shellQuote(lib ?? '/path/to/libjemalloc.so.2')}`;
  return lib ? `${env} ${cmd}` : `install jemalloc (${libraries.jemalloc.install}), then ${env} ${cmd}`;
}

/** `s` as one POSIX shell word: unchanged when it is plain, else single-quoted. */
function shellQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
