// fragstat as users install it: the packed tarball, installed by each package manager with its
// default settings into a new project, then loaded. Installing runs nothing and fetches no build
// tool; the prebuild serves. Needs the npm registry (the package managers come from it), so it
// runs only with FRAGSTAT_INSTALL_TEST=1 (as in CI).
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { root } from './helpers';

const enabled = process.env.FRAGSTAT_INSTALL_TEST === '1';
if (!enabled)
  console.warn('skipping the package manager tests: set FRAGSTAT_INSTALL_TEST=1 (needs the npm registry)');

const dir = mkdtempSync(path.join(os.tmpdir(), 'fragstat-install-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const tools = path.join(dir, 'tools');
let tarball = '';

// Asynchronous, so that the test worker stays responsive through minute-long installs.
function run(cmd: string, args: string[], cwd: string, env: Record<string, string> = {}) {
  return new Promise<{ code: number | null; out: string }>((resolve) => {
    const child = spawn(cmd, args, {
      cwd,
      env: { ...process.env, ...env, npm_config_update_notifier: 'false', COREPACK_ENABLE_STRICT: '0' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill(), 240_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out: `${stdout}\n${stderr}` });
    });
  });
}

const cli = (name: string, file: string) => [process.execPath, path.join(tools, 'node_modules', name, file)];
// Each package manager: how to run it, and how to add a tarball.
const managers: Record<string, { cmd: () => string[]; add: (t: string) => string[]; pnp?: boolean }> = {
  'npm 10': { cmd: () => cli('npm10', 'bin/npm-cli.js'), add: (t) => ['install', t] },
  'npm 11': { cmd: () => cli('npm11', 'bin/npm-cli.js'), add: (t) => ['install', t] },
  'npm (this Node)': { cmd: () => ['npm'], add: (t) => ['install', t] },
  'pnpm 9': { cmd: () => cli('pnpm9', 'bin/pnpm.cjs'), add: (t) => ['add', t] },
  'pnpm 10': { cmd: () => cli('pnpm10', 'bin/pnpm.cjs'), add: (t) => ['add', t] },
  'pnpm latest': { cmd: () => cli('pnpmlatest', 'bin/pnpm.mjs'), add: (t) => ['add', t] },
  'Yarn 1': { cmd: () => cli('yarn1', 'bin/yarn.js'), add: (t) => ['add', `file:${t}`] },
  'Yarn 4': { cmd: () => cli('yarn4', 'bin/yarn.js'), add: (t) => ['add', `fragstat@file:${t}`], pnp: true },
};

beforeAll(async () => {
  if (!enabled) return;
  // The prebuilds the tarball must carry (npm test makes them; prepack would too).
  for (const arch of ['x64', 'arm64']) {
    const p = path.join(root, 'native/prebuilds', `linux-${arch}`, 'fragstat.glibc.node');
    expect(existsSync(p), `${p}: run npm run build:prebuilds`).toBe(true);
  }
  let r = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], root);
  expect(r.code, r.out).toBe(0);
  const packed = JSON.parse(r.out.slice(r.out.indexOf('['), r.out.lastIndexOf(']') + 1))[0];
  tarball = path.join(dir, packed.filename);
  const files: string[] = packed.files.map((f: { path: string }) => f.path);
  expect(files).toEqual(
    expect.arrayContaining([
      'native/prebuilds/linux-x64/fragstat.glibc.node',
      'native/prebuilds/linux-arm64/fragstat.glibc.node',
      'native/binding.gyp',
      'dist/index.js',
      'dist/index.mjs',
    ]),
  );
  expect(files).not.toContain('binding.gyp');
  // What the README links to ships with it.
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  for (const [, link] of readme.matchAll(/\]\((?!https?:|#)([^)#\s]+)/g)) {
    expect(
      files.some((f) => f === link || f.startsWith(`${link.replace(/\/$/, '')}/`)),
      link,
    ).toBe(true);
  }
  expect(files.filter((f) => f.startsWith('native/build/') || f.startsWith('native/node_modules/'))).toEqual(
    [],
  );
  mkdirSync(tools);
  writeFileSync(path.join(tools, 'package.json'), '{"private":true}');
  r = await run(
    'npm',
    [
      'install',
      '--ignore-scripts',
      '--no-audit',
      '--no-fund',
      'npm10@npm:npm@10',
      'npm11@npm:npm@11',
      'pnpm9@npm:pnpm@9',
      'pnpm10@npm:pnpm@10',
      'pnpmlatest@npm:pnpm@latest',
      'yarn1@npm:yarn@1',
      'yarn4@npm:@yarnpkg/cli-dist@4',
    ],
    tools,
  );
  expect(r.code, r.out).toBe(0);
}, 300_000);

describe.runIf(enabled)('installed from the packed tarball', () => {
  for (const [name, pm] of Object.entries(managers)) {
    it(`${name}: installs with no build step and no warning about one, and loads the prebuild`, async () => {
      const project = path.join(dir, name.replace(/\W+/g, '-'));
      mkdirSync(project);
      writeFileSync(
        path.join(project, 'package.json'),
        JSON.stringify({ name: 'app', version: '1.0.0', private: true }),
      );
      if (pm.pnp) writeFileSync(path.join(project, 'yarn.lock'), '');
      const [cmd, ...pre] = pm.cmd();
      const r = await run(cmd, [...pre, ...pm.add(tarball)], project);
      expect(r.code, r.out).toBe(0);
      expect(r.out).not.toMatch(
        /node-gyp(?!-build)|gyp ERR|ERR_PNPM|[Ii]gnored build scripts|approve-builds|build scripts|install-scripts/,
      );
      // No build tool was fetched for it.
      for (const lock of ['package-lock.json', 'pnpm-lock.yaml', 'yarn.lock']) {
        const f = path.join(project, lock);
        if (existsSync(f)) expect(readFileSync(f, 'utf8'), lock).not.toMatch(/node-gyp@/);
      }
      const check = `const f = require('fragstat'); const b = require('fragstat/package.json');
        process.stdout.write(JSON.stringify({ name: f.allocator().name, allocated: f.snapshot().allocatedBytes,
          limitations: f.allocator().limitations, version: b.version }));`;
      const load = pm.pnp
        ? await run(cmd, [...pre, 'node', '-e', check], project)
        : await run(process.execPath, ['-e', check], project);
      expect(load.code, load.out).toBe(0);
      const out = JSON.parse(load.out.trim().split('\n')[0]);
      expect(out).toMatchObject({ name: 'glibc', limitations: null });
      expect(out.allocated).toBeGreaterThan(0);
      if (name === 'npm 10') {
        // The typings under the oldest TypeScript supported (5.0) and the newest, strict, with
        // nodenext and with bundler resolution; @types/node is the one other package they need.
        for (const ts of ['5.0', 'latest']) {
          const t = path.join(dir, `ts-${ts}`);
          mkdirSync(t);
          for (const f of ['consumer.mts', 'consumer.cts'])
            cpSync(path.join(root, 'test/consumer', f), path.join(t, f));
          writeFileSync(path.join(t, 'package.json'), '{"private":true}');
          let i = await run(
            'npm',
            ['install', '--no-audit', '--no-fund', tarball, `typescript@${ts}`, '@types/node@20'],
            t,
          );
          expect(i.code, i.out).toBe(0);
          for (const [module, resolution, files] of [
            ['nodenext', 'nodenext', ['consumer.mts', 'consumer.cts']],
            ['esnext', 'bundler', ['consumer.mts']],
          ] as const) {
            const options = {
              target: 'ES2022',
              module,
              moduleResolution: resolution,
              types: ['node'],
              strict: true,
              noEmit: true,
            };
            writeFileSync(path.join(t, 'tsconfig.json'), JSON.stringify({ compilerOptions: options, files }));
            i = await run(process.execPath, [path.join(t, 'node_modules/typescript/bin/tsc'), '-p', t], t);
            expect(i.code, `TypeScript ${ts}, ${resolution}: ${i.out}`).toBe(0);
          }
        }
      }
      if (name === 'npm (this Node)') {
        // Where no prebuild fits (here: musl, as on Alpine), it loads anyway, RSS only, and says
        // how to build the addon where it is installed.
        const musl = await run(process.execPath, ['-e', check], project, { LIBC: 'musl' });
        expect(musl.code, musl.out).toBe(0);
        const m = JSON.parse(musl.out.trim().split('\n')[0]);
        expect(m.name).toBe('unknown');
        expect(m.limitations).toMatch(/apk add build-base python3/);
        const native = path.join(project, 'node_modules/fragstat/native');
        expect(m.limitations).toContain(`"npx node-gyp rebuild" in ${native}`);
        // Following that advice (with this Node's headers, as offline) gives the full figures.
        let b = await run('npm', ['install', '--no-audit', '--no-fund', 'node-addon-api@8'], project);
        expect(b.code, b.out).toBe(0);
        const nodedir = path.resolve(path.dirname(process.execPath), '..');
        b = await run('npx', ['--yes', 'node-gyp', 'rebuild'], native, { npm_config_nodedir: nodedir });
        expect(b.code, b.out).toBe(0);
        const built = await run(process.execPath, ['-e', check], project, { LIBC: 'musl' });
        expect(built.code, built.out).toBe(0);
        expect(JSON.parse(built.out.trim().split('\n')[0])).toMatchObject({
          name: 'glibc',
          limitations: null,
        });
      }
    }, 300_000);
  }
});
