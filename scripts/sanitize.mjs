// npm run test:sanitize: fragstat's native code under AddressSanitizer and UndefinedBehaviorSanitizer
// (clang), three ways, each failing the run on any report:
//   1. a libFuzzer target for the malloc_info parser, run over fuzz/corpus/malloc_info/ for
//      FUZZ_SECONDS (default 20); new inputs it finds go to a scratch directory, not the corpus;
//   2. the backends driven by a standalone harness (test/native/backends.cc) against the real
//      allocators: ASan replaces malloc, so the harness is built with UBSan only and run with no
//      preload (glibc), then with jemalloc, tcmalloc and mimalloc preloaded; and once more with
//      ASan + UBSan, where ASan's own malloc is what fragstat must recognise as 'unknown';
//   3. the addon itself built with ASan + UBSan, loaded into node with the ASan runtime preloaded,
//      running every binding call (test/native/smoke.cjs), the detach fixture included.
// A missing allocator is skipped with a message (a failure with FRAGSTAT_REQUIRE_SYSTEM=1).
//
//   npm run test:sanitize                      (FUZZ_SECONDS=20)
//   FUZZ_SECONDS=3600 npm run test:sanitize    (a long run)
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const FUZZ_SECONDS = Number(process.env.FUZZ_SECONDS || 20);
const work = mkdtempSync(path.join(os.tmpdir(), 'fragstat-sanitize-'));
const clang = process.env.CXX_SANITIZE || 'clang++';
const backends = readdirSync(path.join(root, 'native'))
  .filter((f) => f.endsWith('.cc') && f !== 'addon.cc')
  .map((f) => path.join(root, 'native', f));
const common = ['-std=c++17', '-g', '-O1', '-fno-omit-frame-pointer', '-fno-sanitize-recover=all'];
const sanEnv = {
  ...process.env,
  ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1',
  UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
};
let failed = 0;
const results = [];

function step(name, fn) {
  process.stdout.write(`\n== ${name}\n`);
  try {
    const note = fn();
    results.push(`ok    ${name}${note ? ` (${note})` : ''}`);
  } catch (err) {
    failed++;
    results.push(`FAIL  ${name}: ${err.message.split('\n')[0]}`);
    process.stdout.write(`${err.message}\n`);
  }
}

function run(cmd, args, env = sanEnv) {
  const r = spawnSync(cmd, args, { env, encoding: 'utf8', maxBuffer: 64 << 20 });
  const out = `${r.stdout}${r.stderr}`;
  if (r.status !== 0)
    throw new Error(`${path.basename(cmd)} exited with ${r.status ?? r.signal}\n${out.slice(-6000)}`);
  return out;
}

function library(files) {
  for (const dir of [
    '/usr/lib/x86_64-linux-gnu',
    '/lib/x86_64-linux-gnu',
    '/usr/lib/aarch64-linux-gnu',
    '/usr/lib64',
  ]) {
    for (const f of files) if (existsSync(path.join(dir, f))) return path.join(dir, f);
  }
  return null;
}

step('libFuzzer: malloc_info parser', () => {
  const bin = path.join(work, 'malloc_info_fuzzer');
  run(clang, [
    ...common,
    '-fsanitize=fuzzer,address,undefined',
    path.join(root, 'fuzz/malloc_info_fuzzer.cc'),
    ...backends,
    '-ldl',
    '-lpthread',
    '-o',
    bin,
  ]);
  const scratch = path.join(work, 'corpus');
  mkdirSync(scratch);
  const out = run(bin, [
    `-max_total_time=${FUZZ_SECONDS}`,
    '-print_final_stats=1',
    scratch,
    path.join(root, 'fuzz/corpus/malloc_info'),
  ]);
  const runs = /stat::number_of_executed_units:\s*(\d+)/.exec(out)?.[1];
  return `${runs} executions in ${FUZZ_SECONDS} s, 0 crashes`;
});

const harness = path.join(root, 'test/native/backends.cc');
const ubsan = path.join(work, 'backends-ubsan');
const asan = path.join(work, 'backends-asan');
step('harness: build (UBSan; ASan + UBSan)', () => {
  run(clang, [...common, '-fsanitize=undefined', harness, ...backends, '-ldl', '-lpthread', '-o', ubsan]);
  run(clang, [
    ...common,
    '-fsanitize=address,undefined',
    harness,
    ...backends,
    '-ldl',
    '-lpthread',
    '-o',
    asan,
  ]);
});
const preloads = {
  glibc: null,
  jemalloc: ['libjemalloc.so.2'],
  tcmalloc: ['libtcmalloc_minimal.so.4', 'libtcmalloc.so.4'],
  mimalloc: ['libmimalloc.so.2', 'libmimalloc.so'],
};
for (const [name, files] of Object.entries(preloads)) {
  step(`harness under ${name} (UBSan)`, () => {
    const lib = files ? library(files) : null;
    if (files && !lib) {
      if (process.env.FRAGSTAT_REQUIRE_SYSTEM === '1') throw new Error(`${files[0]} not found`);
      return `skipped: ${files[0]} not found`;
    }
    run(ubsan, [name], lib ? { ...sanEnv, LD_PRELOAD: lib } : sanEnv);
  });
}
step('harness under ASan (its malloc is reported unknown)', () => {
  run(asan, ['unknown']);
});

step('addon built with ASan + UBSan, every binding call in node', () => {
  // A copy of the package, so the build does not replace this checkout's.
  const pkg = path.join(work, 'package');
  mkdirSync(pkg);
  for (const f of ['package.json', 'native', 'dist', 'test'])
    cpSync(path.join(root, f), path.join(pkg, f), {
      recursive: true,
      filter: (src) => !/[\\/]native[\\/](build|prebuilds)$/.test(src),
    });
  symlinkSync(path.join(root, 'node_modules'), path.join(pkg, 'node_modules'));
  const flags = '-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all -g';
  execFileSync(
    process.execPath,
    [path.join(root, 'node_modules/node-gyp/bin/node-gyp.js'), 'rebuild', '--silent'],
    {
      cwd: path.join(pkg, 'native'),
      env: { ...process.env, CC: 'clang', CXX: 'clang++', CXXFLAGS: flags, CFLAGS: flags, LDFLAGS: flags },
      stdio: 'inherit',
    },
  );
  // node-gyp passes CXXFLAGS and LDFLAGS on to make: check that the addon really is instrumented.
  const undefinedSymbols = execFileSync('nm', ['-u', path.join(pkg, 'native/build/Release/fragstat.node')], {
    encoding: 'utf8',
  });
  if (!/__asan_report|__ubsan_handle/.test(undefinedSymbols))
    throw new Error('the addon was built without the sanitizers');
  const arch = { x64: 'x86_64', arm64: 'aarch64' }[process.arch] ?? process.arch;
  const runtime = execFileSync('clang', [`-print-file-name=libclang_rt.asan-${arch}.so`], {
    encoding: 'utf8',
  }).trim();
  const env = { ...sanEnv, LD_PRELOAD: runtime };
  delete env.PREBUILDS_ONLY;
  run(process.execPath, [path.join(pkg, 'test/native/smoke.cjs'), pkg], env);
  return 'no report';
});

rmSync(work, { recursive: true, force: true });
process.stdout.write(`\n${results.join('\n')}\n`);
process.exit(failed ? 1 : 0);
