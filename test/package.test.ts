// The package as users get it: CommonJS and ES module builds with the same API, typings
// that type-check a consumer, a prebuild that loads on its own and asks no more of the system
// than Node itself does.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { root, runNode, systemCommand } from './helpers';

const prebuildDir = (arch: string) => path.join(root, 'native/prebuilds', `linux-${arch}`);

function prebuildFile(arch: string = process.arch): string {
  const dir = prebuildDir(arch);
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.node')) : [];
  expect(files, `no prebuild in ${dir}: run npm run build:prebuilds`).toHaveLength(1);
  return path.join(dir, files[0]);
}

beforeAll(() => {
  if (!existsSync(prebuildDir(process.arch))) {
    execFileSync('npm', ['run', 'build:prebuilds'], { cwd: root, stdio: 'ignore' });
  }
});

describe('entry points', () => {
  it('require() and import give the same names, and import fragstat is the whole API', () => {
    const r = runNode([
      '--input-type=module',
      '-e',
      `import * as esm from 'fragstat';
       import fragstat from 'fragstat';
       import { createRequire } from 'node:module';
       const cjs = createRequire(import.meta.url)('fragstat');
       const names = Object.keys(esm).filter((n) => n !== 'default').sort();
       process.stdout.write(JSON.stringify({ names, cjsNames: Object.keys(cjs).sort(),
         kinds: names.every((n) => typeof esm[n] === typeof cjs[n]),
         whole: names.every((n) => fragstat[n] === esm[n]), name: esm.allocator().name }));`,
    ]);
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout);
    expect(out.names).toEqual(out.cjsNames);
    expect(out.names).toEqual(
      expect.arrayContaining(['allocator', 'snapshot', 'snapshotAsync', 'trim', 'trimSync', 'monitor']),
    );
    expect(out.kinds).toBe(true);
    // import fragstat from 'fragstat' carries every named export. (The two builds share one state:
    // runtime.test.ts.)
    expect(out.whole).toBe(true);
    expect(out.name).toBe('glibc');
  });

  it('the ES module build is real ES module code: no require() of a module left in it', () => {
    const text = readFileSync(path.join(root, 'dist/index.mjs'), 'utf8');
    // Every module it needs at start-up is a static import; require() only through createRequire,
    // for node-gyp-build, the addon file and the optional prom-client.
    // esbuild leaves a __require stand-in (which throws in an ES module bundle) for each CommonJS
    // require, and a __commonJS wrapper for each CommonJS module it inlines.
    expect(text).not.toMatch(/__require\b|__commonJS\b/);
    expect(text).toMatch(/^import .* from 'node:module';$/m);
  });

  it('the declaration files type-check CommonJS and ESM consumers (tsc)', () => {
    const tsc = path.join(root, 'node_modules/typescript/bin/tsc');
    const r = runNode([tsc, '-p', path.join(root, 'test/consumer/tsconfig.json')]);
    expect(r.stdout + r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('two evaluations of the module (a cleared require cache) both keep working and share the trim log', () => {
    const r = runNode([
      '-e',
      `const a = require('.');
       for (const k of Object.keys(require.cache)) if (k.includes('/dist/')) delete require.cache[k];
       const b = require('.');
       const keep = Buffer.alloc(64 * 1024 * 1024, 1);
       process.stdout.write(JSON.stringify({ same: a === b, a: a.snapshot().allocatedBytes, b: b.snapshot().allocatedBytes,
         at: a.trimSync().supported, bt: b.trimSync().supported, keep: keep.length,
         trims: [a.trimLog().count, b.trimLog().count] }));`,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.same).toBe(false);
    expect(out.a).toBeGreaterThan(64 * 1024 * 1024);
    expect(out.b).toBeGreaterThan(64 * 1024 * 1024);
    expect(out.at && out.bt).toBe(true);
    // One trim log per thread, whichever copy of the module trimmed.
    expect(out.trims).toEqual([2, 2]);
  });

  it('loads where code generation from strings is disallowed', () => {
    const r = runNode([
      '--disallow-code-generation-from-strings',
      '-e',
      `console.log(require('.').snapshot().allocator)`,
    ]);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('glibc');
  });

  it('installs without running anything: no install scripts, no binding.gyp at the root', () => {
    // npm, pnpm and Yarn all run `node-gyp rebuild` for a package with a binding.gyp at its root
    // (pnpm and Yarn even with "gypfile": false), and pnpm and Yarn 4 hold back or refuse
    // dependencies' install scripts. The prebuilds load without either.
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
    for (const script of ['preinstall', 'install', 'postinstall']) {
      expect(pkg.scripts[script], script).toBeUndefined();
    }
    expect(pkg.gypfile).toBeUndefined();
    expect(existsSync(path.join(root, 'binding.gyp'))).toBe(false);
    expect(existsSync(path.join(root, 'native/binding.gyp'))).toBe(true);
    // node-addon-api only serves a build from source: an optional peer, so that Yarn 4 does not
    // fetch node-gyp for it (its scripts name node-gyp).
    expect(Object.keys(pkg.dependencies).sort()).toEqual(['node-gyp-build', 'pprof-format']);
    expect(pkg.peerDependenciesMeta['node-addon-api']).toEqual({ optional: true });
    // pprof-format (heap profiles' protobuf encoder) is plain JavaScript with nothing to install.
    const pprof = JSON.parse(readFileSync(path.join(root, 'node_modules/pprof-format/package.json'), 'utf8'));
    expect(pprof.dependencies ?? {}).toEqual({});
    expect(pprof.scripts?.install ?? pprof.scripts?.postinstall ?? pprof.scripts?.preinstall).toBeUndefined();
  });
});

describe('prebuild', () => {
  it('is tagged for glibc (one N-API build for every Node version) and loads with PREBUILDS_ONLY=1', () => {
    expect(path.basename(prebuildFile())).toBe('fragstat.glibc.node');
    const r = runNode(
      [
        '-e',
        `const b = require('./dist/binding.js');
         const f = require('.');
         process.stdout.write(JSON.stringify({ path: b.bindingPath, loadError: b.loadError && b.loadError.message,
           name: f.allocator().name, allocated: f.snapshot().allocatedBytes }));`,
      ],
      { env: { PREBUILDS_ONLY: '1' } },
    );
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.loadError).toBeNull();
    expect(out.path).toBe(prebuildFile());
    expect(out.name).toBe('glibc');
    expect(out.allocated).toBeGreaterThan(0);
  });

  // Each architecture's prebuild, read with that architecture's objdump (the cross binutils for
  // the one this machine does not run); dlsym's oldest version differs per architecture.
  const targets = [
    { arch: 'x64', triplet: 'x86_64-linux-gnu', debian: 'binutils-x86-64-linux-gnu', dlsym: '2\\.2\\.5' },
    { arch: 'arm64', triplet: 'aarch64-linux-gnu', debian: 'binutils-aarch64-linux-gnu', dlsym: '2\\.17' },
  ];
  for (const t of targets) {
    const objdump = t.arch === process.arch ? 'objdump' : systemCommand(`${t.triplet}-objdump`, t.debian);
    it.runIf(objdump)(
      `linux-${t.arch}: asks no more of the system than Node 20 does (GLIBC_2.28, GLIBCXX_3.4.21) and links no allocator symbol`,
      () => {
        const dump = execFileSync(objdump!, ['-T', prebuildFile(t.arch)], { encoding: 'utf8' });
        expect(dump).toMatch(
          t.arch === 'x64' ? /file format elf64-x86-64/ : /file format elf64-littleaarch64/,
        );
        const versions = (prefix: string) =>
          [...dump.matchAll(new RegExp(`\\b${prefix}_([0-9.]+)`, 'g'))].map((m) =>
            m[1].split('.').map(Number),
          );
        const newer = (v: number[], limit: number[]) => {
          for (let i = 0; i < Math.max(v.length, limit.length); i++) {
            if ((v[i] ?? 0) !== (limit[i] ?? 0)) return (v[i] ?? 0) > (limit[i] ?? 0);
          }
          return false;
        };
        const glibc = versions('GLIBC');
        expect(glibc.length).toBeGreaterThan(0);
        expect(glibc.filter((v) => newer(v, [2, 28])).map((v) => v.join('.'))).toEqual([]);
        expect(
          versions('GLIBCXX')
            .filter((v) => newer(v, [3, 4, 21]))
            .map((v) => v.join('.')),
        ).toEqual([]);
        expect(
          versions('CXXABI')
            .filter((v) => newer(v, [1, 3, 9]))
            .map((v) => v.join('.')),
        ).toEqual([]);
        // dlsym itself must be the architecture's oldest version, not 2.34's.
        expect(dump).toMatch(new RegExp(`\\(?GLIBC_${t.dlsym}\\)?\\s+dlsym\\b`));
        const undefinedSymbols = dump
          .split('\n')
          .filter((l) => l.includes('*UND*'))
          .map((l) => l.trim().split(/\s+/).pop());
        for (const sym of [
          'mallinfo',
          'mallinfo2',
          'malloc_info',
          'malloc_trim',
          'gnu_get_libc_version',
          'mallctl',
          'mallctlbymib',
          'MallocExtension_GetNumericProperty',
          'mi_collect',
          'mi_process_info',
        ]) {
          expect(undefinedSymbols).not.toContain(sym);
        }
      },
    );
  }
});
