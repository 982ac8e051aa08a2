// The Node.js that the tests' child processes run (this one, or FRAGSTAT_TEST_NODE: another
// version, or an arm64 node under emulation) loads the addon built for its architecture.
import path from 'node:path';
import { expect, it } from 'vitest';
import { root, runNode } from './helpers';

it('loads the addon for its own architecture, and glibc serves malloc', () => {
  const r = runNode([
    '-e',
    `const b = require('./dist/binding.js');
     const f = require('.');
     process.stdout.write(JSON.stringify({ arch: process.arch, version: process.version, path: b.bindingPath,
       loadError: b.loadError && b.loadError.message, name: f.allocator().name }));`,
  ]);
  expect(r.code, r.stderr).toBe(0);
  const out = JSON.parse(r.stdout);
  console.log(`children run Node ${out.version} on ${out.arch}: ${out.path}`);
  expect(out.loadError).toBeNull();
  if (process.env.PREBUILDS_ONLY) {
    expect(out.path).toBe(path.join(root, 'native/prebuilds', `linux-${out.arch}`, 'fragstat.glibc.node'));
  }
  expect(out.name).toBe('glibc');
  if (process.env.FRAGSTAT_TEST_NODE_VERSION) {
    expect(out.version).toMatch(new RegExp(`^v${process.env.FRAGSTAT_TEST_NODE_VERSION}\\.`));
  }
  if (process.env.FRAGSTAT_TEST_NODE_ARCH) expect(out.arch).toBe(process.env.FRAGSTAT_TEST_NODE_ARCH);
});

it('import and require give the same module', () => {
  const r = runNode([
    '--input-type=module',
    '-e',
    `import * as esm from 'fragstat';
     import { createRequire } from 'node:module';
     const cjs = createRequire(import.meta.url)('fragstat');
     process.stdout.write(JSON.stringify({ same: esm.snapshot === cjs.snapshot, name: esm.allocator().name }));`,
  ]);
  expect(r.code, r.stderr).toBe(0);
  expect(JSON.parse(r.stdout)).toEqual({ same: true, name: 'glibc' });
});
