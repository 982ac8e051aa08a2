import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { findLibrary, libraries, type Preloadable } from '../src/read/libraries';

export const root = path.join(__dirname, '..');
export const MiB = 1024 * 1024;

export type Preload = Preloadable;

/** Path of the shared library for `name` (found as `fragstat run` finds it), or null. */
export function preloadPath(name: Preload): string | null {
  return findLibrary(name);
}

/**
 * Whether tests under `name` can run. A missing library skips them, with the reason printed,
 * unless FRAGSTAT_REQUIRE_SYSTEM=1 (set in CI), where a missing library is a failure.
 */
export function havePreload(name: Preload): boolean {
  if (preloadPath(name) !== null) return true;
  const msg = `${libraries[name].files[0]} not found (${libraries[name].install})`;
  if (process.env.FRAGSTAT_REQUIRE_SYSTEM === '1') {
    throw new Error(`${msg}, and FRAGSTAT_REQUIRE_SYSTEM=1 requires it`);
  }
  console.warn(`skipping ${name} tests: ${msg}`);
  return false;
}

/**
 * Path of a system command (promtool, prometheus), or null. Missing: skip with a message, unless
 * FRAGSTAT_REQUIRE_SYSTEM=1, where it fails.
 */
export function systemCommand(name: string, debian: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const p = path.join(dir, name);
    if (dir && existsSync(p)) return p;
  }
  const msg = `${name} not found (Debian: apt-get install ${debian})`;
  if (process.env.FRAGSTAT_REQUIRE_SYSTEM === '1')
    throw new Error(`${msg}, and FRAGSTAT_REQUIRE_SYSTEM=1 requires it`);
  console.warn(`skipping tests that need ${name}: ${msg}`);
  return null;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * The command the tests' child processes run as node: FRAGSTAT_TEST_NODE (space-separated, e.g.
 * another Node version's binary, or an emulator followed by an arm64 node), else this Node.
 */
export const nodeCommand: string[] = (process.env.FRAGSTAT_TEST_NODE ?? '').split(' ').filter(Boolean);
if (nodeCommand.length === 0) nodeCommand.push(process.execPath);

type ChildOptions = { preload?: Preload; env?: Record<string, string>; timeoutMs?: number };

/** The environment of a test's child: this one's, less a preload and the test hooks, plus `options`. */
function childEnv(options: ChildOptions): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...process.env };
  delete env.LD_PRELOAD;
  delete env.FRAGSTAT_TEST_HOOKS;
  Object.assign(env, options.env);
  // The addon honours its test hooks only with FRAGSTAT_TEST_HOOKS=1: tests that use a hook get
  // it, unless they set it themselves (to check that the hooks stay off without it).
  if (
    (env.FRAGSTAT_HIDE_SYMBOLS || env.FRAGSTAT_FAIL_SYMBOLS) &&
    options.env?.FRAGSTAT_TEST_HOOKS === undefined
  ) {
    env.FRAGSTAT_TEST_HOOKS = '1';
  }
  if (options.preload) {
    const lib = preloadPath(options.preload);
    if (lib === null) throw new Error(`${options.preload} is not installed`);
    env.LD_PRELOAD = lib;
  }
  return env;
}

/** Runs node with `args` in a child process, optionally with an allocator preloaded. */
export function runNode(args: string[], options: ChildOptions = {}): RunResult {
  const env = childEnv(options);
  const r = spawnSync(nodeCommand[0], [...nodeCommand.slice(1), ...args], {
    cwd: root,
    env,
    encoding: 'utf8',
    timeout: options.timeoutMs ?? 60_000,
    maxBuffer: 64 * MiB,
  });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/**
 * runNode without blocking this process: vitest's worker answers its runner meanwhile (a worker
 * blocked for 60 s fails the run with 'Timeout calling "onTaskUpdate"'). For long fixtures.
 */
export function runNodeAsync(args: string[], options: ChildOptions = {}): Promise<RunResult> {
  const env = childEnv(options);
  const child = spawn(nodeCommand[0], [...nodeCommand.slice(1), ...args], { cwd: root, env });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGTERM'), options.timeoutMs ?? 60_000);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

type FixtureOptions = ChildOptions & { nodeArgs?: string[]; args?: string[] };

/** node's arguments for a fixture script: --expose-gc unless nodeArgs says otherwise. */
function fixtureArgs(fixture: string, options: FixtureOptions): string[] {
  return [
    ...(options.nodeArgs ?? ['--expose-gc']),
    path.join(root, 'test/fixtures', fixture),
    ...(options.args ?? []),
  ];
}

/** runFixture without blocking this process (runNodeAsync). */
export async function runFixtureAsync<T>(fixture: string, options: FixtureOptions = {}): Promise<T> {
  return fixtureOutput<T>(fixture, await runNodeAsync(fixtureArgs(fixture, options), options));
}

/** Runs a fixture script and parses the JSON it prints. */
export function runFixture<T>(fixture: string, options: FixtureOptions = {}): T {
  return fixtureOutput<T>(fixture, runNode(fixtureArgs(fixture, options), options));
}

/** The JSON a fixture printed, or an error with its exit status and output. */
export function fixtureOutput<T>(fixture: string, r: RunResult): T {
  if (r.code !== 0) {
    throw new Error(`${fixture} exited with ${r.code ?? r.signal}\n${r.stderr}\n${r.stdout}`);
  }
  return JSON.parse(r.stdout) as T;
}

/** Evaluates `code` (CommonJS, `fragstat` in scope) in a child and parses what it prints. */
export function evalJson<T>(
  code: string,
  options: { preload?: Preload; env?: Record<string, string> } = {},
): T {
  const r = runNode(['-e', `const fragstat = require(${JSON.stringify(root)}); ${code}`], options);
  if (r.code !== 0) throw new Error(`child exited with ${r.code ?? r.signal}\n${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}
