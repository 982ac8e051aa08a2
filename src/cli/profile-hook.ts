// Loaded with --require into the process `fragstat run --profile` starts: writes jemalloc heap
// dumps (heap_v2 text) to the file the CLI named (FRAGSTAT_PROFILE_DUMP), which the CLI turns into
// pprof. SIGUSR2 starts sampling when it was started inactive, and otherwise writes a dump; a dump
// is also written on 'exit' (process.exit() or the end of the event loop), where the application's
// Buffers are still alive, and before a SIGINT, SIGTERM or SIGHUP that the application does not
// handle ends the process. Never changes what the application does otherwise.
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { isMainThread } from 'node:worker_threads';
import { hookSignals } from './hook-signals';

const out = process.env.FRAGSTAT_PROFILE_DUMP;
if (isMainThread && out) {
  // Only this process profiles: children it starts inherit the preload but not the file.
  delete process.env.FRAGSTAT_PROFILE_DUMP;
  const say = (msg: string) => process.stderr.write(`[fragstat] ${msg}\n`);
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { binding } = require('../binding') as typeof import('../binding');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const fragstat = require('../index') as typeof import('../index');
    const status = fragstat.heapProfilerStatus();
    if (!status.available) throw new Error(status.reason ?? 'heap profiling is not available');
    if (process.env.FRAGSTAT_PROFILE_JS === '1') {
      delete process.env.FRAGSTAT_PROFILE_JS;
      try {
        fragstat.setHeapProfilerJsFrames(true);
      } catch (err) {
        say(`JavaScript frames unavailable: ${(err as Error).message}`);
      }
    }
    let sampling = status.active;
    const dump = () => {
      try {
        const { text } = binding.profileDumpSync(path.dirname(out));
        writeFileSync(`${out}.tmp`, text, { mode: 0o600 });
        renameSync(`${out}.tmp`, out);
      } catch (err) {
        say(`heap profile not written: ${(err as Error).message}`);
      }
    };
    process.on('SIGUSR2', () => {
      if (sampling) dump();
      else {
        fragstat.setHeapProfilerActive(true);
        sampling = true;
        say(`heap profiling started in process ${process.pid}; SIGUSR2 again writes a profile`);
      }
    });
    // The last dump, once: at 'exit' (the application's Buffers are still alive), or before a
    // SIGINT, SIGTERM or SIGHUP that the application does not handle ends the process. The
    // listeners are hook-signals.ts's, shared with hook.ts: each hook adding its own made each
    // take the other's for the application's, and neither let the signal end the process.
    const signals = hookSignals();
    signals.atEnd(() => {
      if (!signals.orphaned) {
        if (sampling) dump();
        return;
      }
      // Nobody will convert the dump: remove the CLI's temporary directory instead.
      const dir = path.dirname(out);
      if (path.basename(dir).startsWith('fragstat-run-')) rmSync(dir, { recursive: true, force: true });
    });
  } catch (err) {
    say(`heap profiling unavailable: ${(err as Error).message}`);
  }
}
