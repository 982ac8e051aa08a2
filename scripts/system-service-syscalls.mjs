// Writes test/fixtures/system-service-syscalls.txt: every system call name in systemd's
// @system-service filter set, its nested @groups expanded, as this machine's systemd-analyze
// prints them. The seccomp test (test/seccomp.test.ts) kills a process on any call outside it.
//
//   node scripts/system-service-syscalls.mjs
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const analyze = (args) => execFileSync('systemd-analyze', args, { encoding: 'utf8' });
const names = new Set();
const seen = new Set();
const expand = (group) => {
  if (seen.has(group)) return;
  seen.add(group);
  for (const raw of analyze(['syscall-filter', group]).split('\n').slice(1)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    if (line.startsWith('@')) expand(line);
    else names.add(line);
  }
};
expand('@system-service');
const version = analyze(['--version']).split('\n')[0];
const out = [
  `# systemd's @system-service syscall set, nested groups expanded: ${[...names].length} names.`,
  `# From \`systemd-analyze syscall-filter @system-service\` of ${version}`,
  '# (Debian 12), via scripts/system-service-syscalls.mjs. Names for other architectures appear too.',
  ...[...names].sort(),
  '',
].join('\n');
writeFileSync(path.join(root, 'test/fixtures/system-service-syscalls.txt'), out);
process.stdout.write(`${[...names].length} names, groups: ${[...seen].join(' ')}\n`);
