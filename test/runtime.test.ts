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

// Two builds (ES module and CommonJS), one state per process: a trim through one is in the other's
// log, a monitor started through one serves the other's health reading and passes its instanceof,
// and both read the same allocator.
it('import and require share one state', () => {
  const r = runNode([
    '--input-type=module',
    '-e',
    `import * as esm from 'fragstat';
     import { createRequire } from 'node:module';
     const cjs = createRequire(import.meta.url)('fragstat');
     const before = cjs.trimLog().count;
     await esm.trim();
     const m = cjs.monitor({ intervalMs: 200 });
     // The monitor's timer does not hold the process open; this one does until the first sample.
     const hold = setInterval(() => {}, 1000);
     await new Promise((resolve) => m.once('sample', resolve));
     clearInterval(hold);
     const h = await esm.health({ breakdown: false });
     m.stop();
     process.stdout.write(JSON.stringify({
       trims: cjs.trimLog().count - before,
       source: h.source,
       instance: m instanceof esm.Monitor,
       names: [esm.allocator().name, cjs.allocator().name],
     }));`,
  ]);
  expect(r.code, r.stderr).toBe(0);
  expect(JSON.parse(r.stdout)).toEqual({
    trims: 1,
    source: 'monitor',
    instance: true,
    names: ['glibc', 'glibc'],
  });
});
