// Checks (--check) or rewrites (--fix) the C++ sources with the clang-format binary that the
// clang-format npm package ships, so no system package is needed.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const bin = require.resolve('clang-format/index.js');
const files = ['native', 'bench']
  .filter((dir) => existsSync(path.join(root, dir)))
  .flatMap((dir) => readdirSync(path.join(root, dir)).map((f) => path.join(dir, f)))
  .filter((f) => /\.(cc|h|c)$/.test(f));
const fix = process.argv.includes('--fix');
const args = fix ? ['-i', ...files] : ['--dry-run', '--Werror', ...files];
try {
  execFileSync(process.execPath, [bin, '--style=file', ...args], { cwd: root, stdio: 'inherit' });
} catch {
  console.error('C++ sources are not formatted: run `npm run format`');
  process.exit(1);
}
