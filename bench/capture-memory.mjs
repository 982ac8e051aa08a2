// What a capture (src/capture/capture.ts) costs in memory and time: the peak RSS above the RSS before it
// (VmHWM after /proc/self/clear_refs "5" reset it), the bundle's size and the time to write it,
// for a monitor history of 360 samples (the default) and 100000 (the largest), under glibc and
// under jemalloc with its heap profiler on. Each in a fresh child, five runs, medians.
//   node --expose-gc bench/capture-memory.mjs
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { allocatorEnv, fragstat, median, MiB, require } from './common.mjs';

const self = fileURLToPath(import.meta.url);
const RUNS = 5;

const status = (key) =>
  Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;

async function child(historySize) {
  const { Capture } = require('../dist/capture/capture.js');
  const { readCaptureOptions } = require('../dist/capture/capture-episode.js');
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'fragstat-capture-bench-'));
  try {
    // A fake cgroup at 95% of its limit: the first sample captures.
    const cg = path.join(tmp, 'cg');
    mkdirSync(cg);
    writeFileSync(path.join(cg, 'cgroup.controllers'), 'memory\n');
    writeFileSync(path.join(cg, 'memory.max'), `${100 * MiB}\n`);
    writeFileSync(path.join(cg, 'memory.stat'), `anon ${95 * MiB}\n`);
    // A history of real snapshots, a second apart.
    const base = { ...fragstat.snapshot(), v8HeapBytes: 0, intervalMs: 1000, intervalReason: 'requested' };
    const history = Array.from({ length: historySize }, (_, i) => ({
      ...base,
      timestamp: base.timestamp - (historySize - i) * 1000,
      rssBytes: base.rssBytes + i * 4096,
    }));
    const source = {
      history: () => history,
      verdict: () => fragstat.verdict(history),
      emit: () => true,
      listenerCount: () => 0,
    };
    const capture = new Capture(
      readCaptureOptions({ dir: path.join(tmp, 'out'), cgroup: { root: cg, path: '/' } }),
      source,
    );
    globalThis.gc();
    const rssBefore = status('VmRSS');
    writeFileSync('/proc/self/clear_refs', '5'); // resets VmHWM to the current RSS
    capture.sample(history[history.length - 1]);
    const info = await capture.pending;
    const peak = status('VmHWM');
    process.stdout.write(
      JSON.stringify({ peakAboveBytes: peak - rssBefore, bytes: info.bytes, ms: info.durationMs }),
    );
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function parent() {
  const rows = [];
  for (const [name, extra] of [
    ['glibc', {}],
    ['jemalloc', { MALLOC_CONF: 'prof:true,prof_active:true,lg_prof_sample:19' }],
  ]) {
    const env = allocatorEnv(name);
    if (env === null) continue;
    for (const history of [360, 100_000]) {
      const runs = [];
      for (let i = 0; i < RUNS; i++) {
        const r = spawnSync(process.execPath, ['--expose-gc', self, 'child', String(history)], {
          env: { ...env, ...extra },
          encoding: 'utf8',
        });
        if (r.status !== 0) throw new Error(r.stderr);
        runs.push(JSON.parse(r.stdout));
      }
      rows.push({
        allocator: name,
        history,
        'peak RSS above before (MiB)': (median(runs.map((r) => r.peakAboveBytes)) / MiB).toFixed(1),
        'bundle (KiB)': (median(runs.map((r) => r.bytes)) / 1024).toFixed(0),
        'time (ms)': median(runs.map((r) => r.ms)).toFixed(0),
      });
    }
  }
  console.table(rows);
}

if (process.argv[2] === 'child') await child(Number(process.argv[3]));
else parent();
