// Compiles the addon in native/ with the headers of the Node.js that runs this script (npm's
// nodedir when set), so no download is needed.
//
//   node scripts/build-native.mjs                         native/build/Release, for development
//   node scripts/build-native.mjs --prebuilds             native/prebuilds/linux-<arch>/ for this
//                                                         machine, and linux-arm64 too when the
//                                                         aarch64 cross compiler is installed
//   node scripts/build-native.mjs --prebuilds --all       both, or fail (prepack)
//   node scripts/build-native.mjs --prebuilds --arch arm64
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const native = path.join(root, 'native');
const require = createRequire(import.meta.url);
const argv = process.argv.slice(2);

/** A directory holding include/node/node_api.h: npm's nodedir, else this Node's own prefix. */
function nodedir() {
  const candidates = [
    process.env.npm_config_nodedir,
    process.env.NODEDIR,
    path.resolve(path.dirname(process.execPath), '..'),
  ].filter(Boolean);
  const found = candidates.find((d) => existsSync(path.join(d, 'include/node/node_api.h')));
  if (!found) {
    console.error(
      `build-native: no Node.js headers in ${candidates.map((d) => path.join(d, 'include/node')).join(', ')}; ` +
        'set npm_config_nodedir to a directory holding include/node (a Node.js tarball or the nodejs-dev package)',
    );
    process.exit(1);
  }
  return found;
}

function has(command) {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

const cross = {
  arm64: {
    prefix: 'aarch64-linux-gnu-',
    install: 'Debian/Ubuntu: apt-get install g++-aarch64-linux-gnu binutils-aarch64-linux-gnu',
  },
  x64: {
    prefix: 'x86_64-linux-gnu-',
    install: 'Debian/Ubuntu: apt-get install g++-x86-64-linux-gnu binutils-x86-64-linux-gnu',
  },
};

function run(file, args, env) {
  const r = spawnSync(file, args, { cwd: native, stdio: 'inherit', env: { ...process.env, ...env } });
  if (r.status !== 0) {
    console.error(`build-native: ${path.basename(file)} ${args.join(' ')} failed`);
    process.exit(r.status ?? 1);
  }
}

const dir = nodedir();
const headers = { npm_config_nodedir: dir };

if (!argv.includes('--prebuilds')) {
  run(
    process.execPath,
    [require.resolve('node-gyp/bin/node-gyp.js'), 'rebuild', `--nodedir=${dir}`],
    headers,
  );
  process.exit(0);
}

const host = process.arch;
const archIndex = argv.indexOf('--arch');
let arches;
if (archIndex >= 0) arches = [argv[archIndex + 1]];
else if (argv.includes('--all')) arches = ['x64', 'arm64'];
else {
  arches = [host];
  for (const a of ['x64', 'arm64']) {
    if (a === host) continue;
    if (has(`${cross[a].prefix}g++`)) arches.push(a);
    else
      console.warn(`build-native: no ${cross[a].prefix}g++, so no linux-${a} prebuild (${cross[a].install})`);
  }
}

const prebuildify = require.resolve('prebuildify/bin.js');
for (const arch of arches) {
  const env = { ...headers };
  const args = [
    '--name',
    'fragstat',
    '--napi',
    '--strip',
    '--tag-libc',
    '--target',
    process.versions.node,
    '--arch',
    arch,
  ];
  if (arch !== host) {
    const { prefix, install } = cross[arch] ?? {};
    if (!prefix || !has(`${prefix}g++`)) {
      console.error(
        `build-native: cannot cross-compile for linux-${arch}: no ${prefix ?? '?'}g++ (${install ?? ''})`,
      );
      process.exit(1);
    }
    Object.assign(env, {
      CC: `${prefix}gcc`,
      CXX: `${prefix}g++`,
      LINK: `${prefix}g++`,
      AR: `${prefix}ar`,
      PREBUILD_STRIP_BIN: `${prefix}strip`,
    });
  }
  console.log(`build-native: linux-${arch} prebuild (headers from ${dir})`);
  run(process.execPath, [prebuildify, ...args], env);
}
execFileSync('ls', ['-l', ...arches.map((a) => `prebuilds/linux-${a}`)], { cwd: native, stdio: 'inherit' });
