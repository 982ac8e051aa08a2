// Loading and calling fragstat in several worker_threads at once, and terminating them mid-call,
// never takes the process down (each run is a child process: a crash shows as its exit status).
import { describe, expect, it } from 'vitest';
import path from 'node:path';
import { fixtureOutput, havePreload, root, runNode, type Preload, type RunResult } from './helpers';

interface WorkersRun {
  rounds: number;
  workerCalls: number;
  mainCalls: number;
  terminated: number;
  allocators: string[];
  mainAllocator: string;
  trimAfter: boolean;
  snapshotAfter: number | null;
}

const ROUNDS = 16;
const WORKERS = 4;

// Node 20 unregisters a worker's isolate from its platform before it disposes of the isolate
// (WorkerThreadData's destructor in src/node_worker.cc). A TurboFan job still running on a
// background thread in that window can start incremental marking, ask the platform for the gone
// isolate's task runner and abort the process: "Assertion failed: (data.first) != nullptr" in
// NodePlatform::ForIsolate, with only V8 frames on the stack. That is Node's race, not fragstat's,
// and it is rare (once in one CI run; not in 120 runs of this fixture on a loaded machine). Turning
// off concurrent recompilation compiles on the worker's own thread and closes that window; what
// these tests exercise, fragstat's calls in workers and their teardown, is unchanged.
const NODE_ARGS = ['--no-concurrent-recompilation'];

// That abort's signature: Node's assertion, with no frame from any addon (a .node file) on the
// aborting thread. Other background work may still reach the same Node race, so such a run is
// repeated, once in this whole file, with the first run's output printed. The signature cannot
// prove fragstat innocent (the assertion fires on whichever thread posts the task), so a second
// one, or any other failure, fails.
function isNodeTeardownRace(r: RunResult): boolean {
  return (
    r.signal === 'SIGABRT' &&
    r.stderr.includes('NodePlatform::ForIsolate') &&
    r.stderr.includes('Assertion failed: (data.first) != nullptr') &&
    !/\.node\]/.test(r.stderr)
  );
}

let repeated = false;
function runSurvivingNodeRace(args: string[], options: Parameters<typeof runNode>[1] = {}): RunResult {
  let r = runNode([...NODE_ARGS, ...args], options);
  if (isNodeTeardownRace(r) && !repeated) {
    repeated = true;
    console.warn(
      `Node aborted in its own worker teardown (no addon frame on the stack); running once more. Its output:\n${r.stderr}`,
    );
    r = runNode([...NODE_ARGS, ...args], options);
  }
  return r;
}

function runWorkers(preload?: Preload): WorkersRun {
  const r = runSurvivingNodeRace([path.join(root, 'test/fixtures/workers.cjs')], {
    preload,
    env: { ROUNDS: String(ROUNDS), WORKERS: String(WORKERS) },
  });
  return fixtureOutput<WorkersRun>('workers.cjs', r);
}

function check(r: WorkersRun, name: string) {
  expect(r.rounds).toBe(ROUNDS);
  expect(r.terminated).toBe(ROUNDS * WORKERS);
  expect(r.workerCalls).toBeGreaterThan(0);
  expect(r.mainCalls).toBeGreaterThan(0);
  expect(r.allocators).toEqual([name]);
  expect(r.mainAllocator).toBe(name);
  expect(r.trimAfter).toBe(true);
}

describe('worker_threads', () => {
  it('survives workers terminated mid-call, round after round (glibc)', () => {
    const r = runWorkers();
    check(r, 'glibc');
    expect(r.snapshotAfter!).toBeGreaterThan(0);
  });

  for (const name of ['jemalloc', 'tcmalloc', 'mimalloc'] as Preload[]) {
    it.runIf(havePreload(name))(`survives the same under ${name}`, () => {
      const r = runWorkers(name);
      check(r, name);
    });
  }
});

describe('process lifecycle', () => {
  const cases: [string, string][] = [
    [
      'exits while a trim and a detail walk are queued',
      `fragstat.trim(); fragstat.snapshotAsync({ detail: true }); process.exit(0);`,
    ],
    [
      'exits naturally after pending work completes',
      `Promise.all([fragstat.trim(), fragstat.snapshotAsync()]).then(() => {});`,
    ],
    [
      'exits while a worker is mid-call',
      `const { Worker } = require('node:worker_threads');
      new Worker("const f = require(" + JSON.stringify(process.cwd()) + "); for (;;) { f.snapshot({ detail: true }); f.trimSync(); }", { eval: true });
      setTimeout(() => process.exit(0), 200);`,
    ],
  ];
  for (const [title, code] of cases) {
    it(title, () => {
      const r = runSurvivingNodeRace(['-e', `const fragstat = require(process.cwd()); ${code}`]);
      expect(r.stderr).toBe('');
      expect(r.signal).toBeNull();
      expect(r.code).toBe(0);
    });
  }
});
