// The worker thread holders() runs: it parses a heap snapshot file on its own V8 heap, away from
// the caller's, and posts back the Holders (plain data).
import { createReadStream } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { holdersFromSnapshot, type HoldersOptions } from './holders';

const { file, options } = workerData as { file: string; options: HoldersOptions };
const stream = createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 20 });
holdersFromSnapshot(stream as AsyncIterable<string>, options).then(
  (result) => parentPort!.postMessage({ result }),
  (error: unknown) =>
    parentPort!.postMessage({ error: error instanceof Error ? error.message : String(error) }),
);
