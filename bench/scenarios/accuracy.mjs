// How right the verdict is on the scenario recordings (test/fixtures/scenarios), and how soon:
// replays each recording as it grew, asking verdict() every 5 s of it, at two cadences: every
// sample of the recording (fragstat run's default, one a second) and the readings a monitor started
// with defaults would have had (every 5 s for five minutes, then every 10 s). Prints a markdown
// table; --write FILE replaces the table between the markers in FILE.
//
//   node bench/scenarios/accuracy.mjs [--write docs/VERDICT.md]
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fragstat, table } from '../common.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const dir = path.join(here, '../../test/fixtures/scenarios');
const STEP_MS = 5000;

/** The recording's header and its samples (lines with a timestamp and an RSS figure). */
export function load(file) {
  const lines = readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
  const header = lines.find((l) => l.scenario) ?? {};
  const samples = lines.filter((l) => typeof l.timestamp === 'number' && 'rssBytes' in l);
  return { header, samples };
}

/** The samples a default monitor would have taken: every 5 s for five minutes, then every 10 s. */
export function monitorCadence(samples) {
  const out = [];
  const t0 = samples[0].timestamp;
  let next = t0;
  for (const s of samples) {
    if (s.timestamp < next) continue;
    out.push(s);
    next = s.timestamp + (s.timestamp - t0 < 300_000 ? 5000 : 10_000);
  }
  return out;
}

/** The verdict every STEP_MS of a recording: [{ atMs (from load start), kind, confidence }]. */
export function replay(samples, loadStartedAt) {
  const out = [];
  const t0 = samples[0].timestamp;
  let i = 0;
  for (let t = t0 + STEP_MS; ; t += STEP_MS) {
    while (i < samples.length && samples[i].timestamp <= t) i++;
    const v = fragstat.verdict(samples.slice(0, i));
    out.push({ atMs: t - (loadStartedAt ?? t0), kind: v.kind, confidence: v.confidence });
    if (i >= samples.length) break;
  }
  return out;
}

const minutes = (ms) => (ms === null ? 'never' : `${(ms / 60_000).toFixed(1)} min`);

/** One row per scenario and cadence. */
export function accuracy() {
  const rows = [];
  for (const f of readdirSync(dir)
    .filter((f) => f.endsWith('.ndjson'))
    .sort()) {
    const { header, samples } = load(path.join(dir, f));
    if (samples.length < 2) continue;
    for (const [cadence, pts] of [
      ['fragstat run (1 s)', samples],
      ['monitor() defaults', monitorCadence(samples)],
    ]) {
      const steps = replay(pts, header.loadStartedAt);
      const last = steps[steps.length - 1];
      const firstRight = steps.find((s) => s.kind === header.expected && s.atMs >= 0);
      // Other kinds shown after the first verdict (insufficient evidence is not a verdict).
      const wrong = new Map();
      for (const s of steps) {
        if (s.kind === header.expected || s.kind === 'insufficient-evidence') continue;
        wrong.set(s.kind, (wrong.get(s.kind) ?? 0) + STEP_MS);
      }
      rows.push([
        header.scenario ?? f,
        header.allocator ?? '?',
        header.expected ?? '?',
        cadence,
        `${last.kind} (${last.confidence})`,
        last.kind === header.expected ? 'yes' : 'no',
        minutes(firstRight ? firstRight.atMs : null),
        [...wrong].map(([k, ms]) => `${k} ${minutes(ms)}`).join(', ') || 'none',
      ]);
    }
  }
  return table(
    [
      'scenario',
      'allocator',
      'expected',
      'readings',
      'verdict at the end',
      'right',
      'first right after load',
      'other verdicts shown (for how long)',
    ],
    rows,
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const text = accuracy();
  const i = process.argv.indexOf('--write');
  if (i > 0) {
    const file = process.argv[i + 1];
    const doc = readFileSync(file, 'utf8');
    const start = '<!-- accuracy:start -->';
    const end = '<!-- accuracy:end -->';
    const a = doc.indexOf(start);
    const b = doc.indexOf(end);
    if (a < 0 || b < a) throw new Error(`${file} has no ${start} ... ${end} markers`);
    writeFileSync(file, `${doc.slice(0, a + start.length)}\n\n${text}\n\n${doc.slice(b)}`);
    console.log(`wrote the table into ${file}`);
  } else console.log(text);
}
