// Before each test, one full turn of the event loop. Vitest's worker sends its runner an RPC at
// each test's start and end and gives up on the answer after 60 s; a test that spawns a child
// synchronously blocks the worker, and consecutive ones hand over through promises alone, so the
// answers wait unread while the blocked time adds up (on a loaded machine past 60 s: 'Timeout
// calling "onTaskUpdate"', with every test passed). Two setImmediate turns include a poll phase,
// where the answers are read, whatever phase the previous test ended in.
import { beforeEach } from 'vitest';

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

beforeEach(async () => {
  await turn();
  await turn();
});
