// fragstat inside an esbuild bundle, CommonJS and ESM (no banner: the ES module build has no
// CommonJS inside it), as the README's Bundlers section says:
// with native/prebuilds copied next to the bundle the addon loads; without it fragstat warns at
// start-up and says what to do; marked external it loads from node_modules.
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildSync } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { root, runNode } from './helpers';

const dir = mkdtempSync(path.join(os.tmpdir(), 'fragstat-bundle-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
mkdirSync(path.join(dir, 'node_modules'));
symlinkSync(root, path.join(dir, 'node_modules/fragstat'));
const print = `console.log(JSON.stringify({ name: f.allocator().name, limitations: f.allocator().limitations }));`;
writeFileSync(path.join(dir, 'app.cjs'), `const f = require('fragstat');\n${print}`);
writeFileSync(path.join(dir, 'app.mjs'), `import * as f from 'fragstat';\n${print}`);

function bundle(format: 'cjs' | 'esm', external: boolean): string {
  const out = path.join(
    dir,
    `out-${format}-${external ? 'external' : 'bundled'}`,
    format === 'esm' ? 'app.mjs' : 'app.js',
  );
  buildSync({
    entryPoints: [path.join(dir, format === 'esm' ? 'app.mjs' : 'app.cjs')],
    bundle: true,
    platform: 'node',
    format,
    outfile: out,
    external: external ? ['fragstat'] : [],
    logLevel: 'silent',
  });
  return out;
}

const runBundle = (file: string) => {
  const r = runNode([file]);
  expect(r.code, r.stderr).toBe(0);
  return { ...(JSON.parse(r.stdout) as { name: string; limitations: string | null }), stderr: r.stderr };
};

describe.each(['cjs', 'esm'] as const)('esbuild, %s', (format) => {
  it('bundled without the addon: warns at start-up, names the fix, reports RSS only', () => {
    const out = bundle(format, false);
    const r = runBundle(out);
    expect(r.name).toBe('unknown');
    const fix = `copy node_modules/fragstat/native/prebuilds to ${path.dirname(out)}/prebuilds`;
    expect(r.limitations).toContain(fix);
    expect(r.limitations).toMatch(/mark fragstat as external/);
    expect(r.stderr).toContain('[FRAGSTAT_BUNDLED_WITHOUT_ADDON]');
    expect(r.stderr).toContain(fix);
  });

  it('bundled with native/prebuilds copied next to it: the addon loads', () => {
    const out = bundle(format, false);
    cpSync(path.join(root, 'native/prebuilds'), path.join(path.dirname(out), 'prebuilds'), {
      recursive: true,
    });
    expect(runBundle(out)).toEqual({ name: 'glibc', limitations: null, stderr: '' });
  });

  it('fragstat marked external: loads from node_modules', () => {
    const out = bundle(format, true);
    // Beside node_modules, as a deployed bundle would be.
    const beside = path.join(dir, path.basename(out).replace(/^app/, `app-${format}-external`));
    cpSync(out, beside);
    expect(runBundle(beside)).toEqual({ name: 'glibc', limitations: null, stderr: '' });
  });
});
