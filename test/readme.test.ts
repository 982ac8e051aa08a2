// The README's code blocks marked <!-- runnable: name --> run as written, as a user would paste
// them into a project where fragstat is installed.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { root, runNode } from './helpers';

const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
const blocks = [...readme.matchAll(/<!-- runnable: ([\w.-]+) -->\s*```\w*\n([\s\S]*?)```/g)].map((m) => ({
  file: m[1],
  code: m[2],
}));
const dir = mkdtempSync(path.join(os.tmpdir(), 'fragstat-readme-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
mkdirSync(path.join(dir, 'node_modules'));
symlinkSync(root, path.join(dir, 'node_modules/fragstat'));

it('marks at least the first example (Usage) runnable', () => {
  expect(blocks.map((b) => b.file)).toContain('usage.mjs');
  expect(readme.indexOf('<!-- runnable: usage.mjs -->')).toBeLessThan(readme.indexOf('## API'));
});

for (const { file, code } of blocks) {
  it(`${file} runs as written`, () => {
    writeFileSync(path.join(dir, file), code);
    const r = runNode([path.join(dir, file)]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    if (file === 'usage.mjs') {
      expect(r.stdout).toMatch(/^glibc \d+ \d+ \d+ [\d.]+\n/);
      expect(r.stdout).toMatch(/released \d+ bytes in [\d.]+ ms/);
    }
  });
}
