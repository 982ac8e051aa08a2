// Loaded with --require into the process `fragstat run` starts: samples with a monitor and writes
// each sample as one JSON line to the pipe the CLI opened (FRAGSTAT_RUN_FD). Never changes what
// the application does: the monitor's timer is unref'd, and any failure here only stops sampling.
import { closeSync, writeSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';

const fdText = process.env.FRAGSTAT_RUN_FD;
// npm, npx, yarn and pnpm are node programs too, but they start the application as a child that
// cannot reach the pipe: say so instead of sampling the launcher.
const launcher =
  /(^|[\\/])(npm|npx|yarn|pnpm)(-cli)?(\.c?js)?$|[\\/](npm|yarn|pnpm|corepack)[\\/]bin[\\/]/.exec(
    process.argv[1] ?? '',
  );
if (isMainThread && fdText && launcher) {
  delete process.env.FRAGSTAT_RUN_FD;
  try {
    writeSync(
      Number(fdText),
      `${JSON.stringify({
        pid: process.pid,
        error:
          `the command is a package manager (${process.argv[1]}), whose child cannot be sampled: ` +
          'run the application itself, e.g. fragstat run -- node app.js',
      })}\n`,
    );
  } catch {
    // the CLI went away
  }
} else if (isMainThread && fdText) {
  // Only this process samples: children it starts inherit the preload but not the pipe.
  delete process.env.FRAGSTAT_RUN_FD;
  const fd = Number(fdText);
  const interval = Number(process.env.FRAGSTAT_RUN_INTERVAL_MS) || 1000;
  const detail = process.env.FRAGSTAT_RUN_DETAIL === '1';
  const autoTrim = process.env.FRAGSTAT_RUN_AUTOTRIM === '1';
  const report = process.env.FRAGSTAT_RUN_REPORT === '1';
  let open = true;
  const write = (obj: unknown) => {
    if (!open) return;
    try {
      writeSync(fd, `${JSON.stringify(obj)}\n`);
    } catch {
      open = false; // the CLI went away: stop sampling, keep the application running
    }
  };
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const fragstat = require('../index') as typeof import('../index');
    const m = fragstat.monitor({ intervalMs: interval, detail, historySize: 2, autoTrim });
    m.on('sample', (s) => write({ pid: process.pid, ...s }));
    m.on('error', () => {});
    // With --report the report's own lines carry every trim (the application's too).
    if (autoTrim && !report) m.on('trim', (t) => write({ pid: process.pid, trim: t }));
    if (report) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      (require('./hook-report') as typeof import('./hook-report')).reportExtras(fragstat, m, write);
    }
    let ended = false;
    const final = () => {
      if (ended) return;
      ended = true;
      m.stop();
      try {
        write({ pid: process.pid, final: true, ...fragstat.snapshot() });
        closeSync(fd);
      } catch {
        // nothing to do at exit
      }
    };
    process.on('exit', final);
    // SIGTERM and SIGINT end a process without 'exit': take the final sample, then, where the
    // application has no handler of its own, let the signal do what it would have done.
    // (An application that handles the signal itself ends through 'exit' when it is done.)
    const onSignal = (signal: NodeJS.Signals) => {
      if (process.listenerCount(signal) > 1) return;
      final();
      process.off(signal, onSignal);
      process.kill(process.pid, signal);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  } catch (err) {
    write({ pid: process.pid, error: (err as Error).message });
  }
}
