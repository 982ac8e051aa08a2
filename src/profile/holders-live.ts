// holders() for the calling process: V8 writes its heap snapshot to a temporary file (a pause of
// the event loop, no growth of the JS heap beyond V8's own snapshot structures), and a worker
// thread parses it on its own heap. The file is removed afterwards, and the free memory both
// steps leave in the allocator is given back with trim().
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { writeHeapSnapshot } from 'node:v8';
import { Worker } from 'node:worker_threads';
import { packageRoot } from '../binding';
import { trim } from '../read/core';
import { holdersOptions, type Holders, type HoldersOptions } from './holders';
import { checkKeys, checkOptions, describe as describeValue } from '../base/validate';

/** Options of holders(): those of holdersFromSnapshot() and where to write the snapshot. */
export interface LiveHoldersOptions extends HoldersOptions {
  /** Directory for the temporary snapshot file (default: the OS's temporary directory). */
  directory?: string;
}

/** A Holders reading of this process, with the pause the snapshot cost. */
export interface LiveHolders extends Holders {
  /** Milliseconds the event loop stood still while V8 wrote the snapshot. */
  pauseMs: number;
}

/**
 * Which of this process's JS objects keep its native memory alive: takes a heap snapshot (the
 * event loop pauses while V8 writes it to a temporary file) and analyses it in a worker thread.
 */
export async function holders(options?: LiveHoldersOptions): Promise<LiveHolders> {
  const o = checkOptions('options', options);
  checkKeys('options', o, ['top', 'pathSteps', 'directory']);
  const { directory, ...rest } = o as LiveHoldersOptions;
  if (directory !== undefined && typeof directory !== 'string') {
    throw new TypeError(`Expected a string for options.directory but received ${describeValue(directory)}`);
  }
  const analysis = holdersOptions('options', rest);
  // From the package root, not this file's folder: the ES module build is one file in dist/.
  const workerFile = path.join(packageRoot, 'dist', 'profile', 'holders-worker.js');
  if (!existsSync(workerFile)) {
    throw new Error(`holders() needs ${workerFile}, which a bundle leaves out: mark fragstat as external`);
  }
  const dir = mkdtempSync(path.join(directory ?? os.tmpdir(), 'fragstat-holders-'));
  try {
    const file = path.join(dir, 'process.heapsnapshot');
    const start = performance.now();
    writeHeapSnapshot(file);
    const pauseMs = performance.now() - start;
    // V8 built its own copy of the heap graph on this thread's malloc arena and has freed it; the
    // worker's allocations come from another arena, so give the free memory back first.
    await releaseFreeMemory();
    const result = await new Promise<Holders>((resolve, reject) => {
      const worker = new Worker(workerFile, { workerData: { file, options: analysis } });
      let settled = false;
      worker.once('message', (m: { result?: Holders; error?: string }) => {
        settled = true;
        if (m.result) resolve(m.result);
        else reject(new Error(`Could not analyse the heap snapshot: ${m.error}`));
      });
      worker.once('error', (error) => {
        settled = true;
        reject(error);
      });
      worker.once('exit', (code) => {
        if (!settled) reject(new Error(`The heap snapshot worker exited with code ${code}`));
      });
    });
    await releaseFreeMemory(); // what the worker freed as it exited
    return { ...result, pauseMs };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** fragstat's trim() (off the JS thread), whose failure changes nothing here. */
async function releaseFreeMemory(): Promise<void> {
  try {
    await trim();
  } catch {
    // No allocator support: the memory stays with the allocator, as without this call.
  }
}
