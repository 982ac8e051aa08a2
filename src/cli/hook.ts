// Loaded with --require into the process `fragstat run` starts: samples with a monitor and writes
// each sample as one JSON line to the pipe the CLI opened (FRAGSTAT_RUN_FD). Never changes what
// the application does while the CLI runs: the monitor's timer is unref'd, and any failure here
// only stops sampling. When the CLI is gone, the application ends as SIGTERM would end it.
import { closeSync, writeSync } from 'node:fs';
import { getHeapStatistics } from 'node:v8';
import { isMainThread } from 'node:worker_threads';
import { ancestryTo, hookSignals } from './hook-signals';

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
  // --capture-dir: the children the application starts do not capture too.
  const captureDir = process.env.FRAGSTAT_RUN_CAPTURE_DIR || null;
  delete process.env.FRAGSTAT_RUN_CAPTURE_DIR;
  const cliPid = Number(process.env.FRAGSTAT_RUN_CLI_PID);
  delete process.env.FRAGSTAT_RUN_CLI_PID;
  let open = true;
  const write = (obj: unknown) => {
    if (!open) return;
    try {
      writeSync(fd, `${JSON.stringify(obj)}\n`);
    } catch (err) {
      open = false; // stop sampling
      // Nobody reads the pipe any more: the CLI is gone. (Its death is also seen through the
      // process tree within a second; this covers a command that started node through a shell.)
      if ((err as NodeJS.ErrnoException).code === 'EPIPE') hookSignals().cliGone();
    }
  };
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const fragstat = require('../index') as typeof import('../index');
    // A capture's bundle carries the verdict and its samples: then the default history (360).
    const m = fragstat.monitor({
      intervalMs: interval,
      detail,
      historySize: captureDir ? undefined : 2,
      autoTrim,
      ...(captureDir ? { capture: { dir: captureDir } } : {}),
    });
    m.on('capture', (info) => write({ pid: process.pid, capture: info }));
    m.on('sample', (s) => write({ pid: process.pid, ...s }));
    m.on('error', () => {});
    // With --report the report's own lines carry every trim (the application's too).
    if (autoTrim && !report) m.on('trim', (t) => write({ pid: process.pid, trim: t }));
    if (report) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      (require('./hook-report') as typeof import('./hook-report')).reportExtras(fragstat, m, write);
    }
    // The final sample, once: at 'exit', or before a signal the application does not handle
    // ends the process (hook-signals.ts, shared with the profile hook).
    const signals = hookSignals();
    signals.atEnd(() => {
      m.stop();
      try {
        // With V8's heap, as every monitor sample has it: the verdict weighs it at the end too.
        write({
          pid: process.pid,
          final: true,
          ...fragstat.snapshot(),
          v8HeapBytes: getHeapStatistics().total_physical_size,
        });
        closeSync(fd);
      } catch {
        // nothing to do at exit
      }
    });
    // Tells the CLI that the signal reached the application, so that it does not pass on a
    // SIGINT that the terminal already sent to both (main.ts).
    signals.onSignal((signal) => write({ pid: process.pid, signal }));
    // The CLI is gone (killed, even by SIGKILL, or crashed): end as SIGTERM would, rather than
    // run on unwatched with nobody to pass signals on.
    const chain = cliPid > 0 ? ancestryTo(cliPid) : null;
    if (chain) signals.endWhenGone(chain);
  } catch (err) {
    write({ pid: process.pid, error: (err as Error).message });
  }
}
