// Writes dist/index.mjs, fragstat's ES module build, and dist/index.d.mts, its types.
//
// The build is real ES module code (static imports of node: built-ins), so an ES module bundle of
// an application that imports fragstat runs; a thin ESM face over the CommonJS build did not
// (a bundler turns its require() calls into "Dynamic require of ... is not supported").
// Process-wide state lives on the addon's exports (or, without the addon, on one object per
// process), so the CommonJS and ES module builds loaded into one process share one reading,
// one trim log and one set of monitors.
import { build } from 'esbuild';
import { writeFileSync } from 'node:fs';

const root = new URL('..', import.meta.url).pathname;

// What CommonJS gives for free: require (for node-gyp-build, the addon file and the optional
// prom-client, resolved at run time as the CommonJS build resolves them) and __dirname (where
// fragstat's files are). Both come from import.meta.url, or from __filename when a bundler has
// turned this file into CommonJS (import.meta is empty there). A free \`require\` is never read:
// an ES module bundle replaces it with a stand-in that throws.
const banner = `import { createRequire as __fragstatCreateRequire } from 'node:module';
import { dirname as __fragstatDirname } from 'node:path';
import { fileURLToPath as __fragstatFileURLToPath } from 'node:url';
const __fragstat_file = import.meta.url ? __fragstatFileURLToPath(import.meta.url) : __filename;
const __fragstat_require = __fragstatCreateRequire(__fragstat_file);
const __fragstat_dirname = __fragstatDirname(__fragstat_file);`;

await build({
  stdin: {
    contents: `export * from './src/index';\nimport * as fragstat from './src/index';\nexport default fragstat;\n`,
    resolveDir: root,
    sourcefile: 'index.mjs',
    loader: 'ts',
  },
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node18',
  outfile: `${root}dist/index.mjs`,
  packages: 'external',
  banner: { js: banner },
  define: { require: '__fragstat_require', __dirname: '__fragstat_dirname' },
  logLevel: 'warning',
});

writeFileSync(
  `${root}dist/index.d.mts`,
  `import * as fragstat from './index.js';\n\nexport * from './index.js';\nexport default fragstat;\n`,
);
