// The verdict on recordings of six small real services with a known answer (bench/scenarios/,
// recorded by `npm run bench:scenarios` under fragstat run): a native leak, a JS leak, bursts then
// idle under glibc and under jemalloc, a bounded cache that plateaus, a periodic batch. Each
// recording's first line says what the verdict must be; every surface that reads a recording
// must say it: verdict(), fragstat doctor FILE, fragstat report --json and the HTML report.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { verdict, type VerdictPoint } from '../src';
import { root } from './helpers';

const dir = path.join(root, 'test/fixtures/scenarios');
const work = mkdtempSync(path.join(os.tmpdir(), 'fragstat-scenarios-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const bin = path.join(root, 'bin/fragstat.js');

interface Header {
  scenario: string;
  expected: string;
  allocator: string;
  loadStartedAt: number;
}

function load(file: string): { header: Header; points: VerdictPoint[] } {
  const rows = readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const header = rows.find((r) => typeof r.scenario === 'string') as unknown as Header;
  const points = rows.filter(
    (r) => typeof r.timestamp === 'number' && 'rssBytes' in r,
  ) as unknown as VerdictPoint[];
  return { header, points };
}

/** The verdict every 5 s of the recording as it grew: [ms after the load started, kind, confidence]. */
function replay(points: VerdictPoint[], loadStartedAt: number): [number, string, string][] {
  const out: [number, string, string][] = [];
  let i = 0;
  for (let t = points[0].timestamp + 5000; ; t += 5000) {
    while (i < points.length && points[i].timestamp <= t) i++;
    const v = verdict(points.slice(0, i));
    out.push([t - loadStartedAt, v.kind, v.confidence]);
    if (i >= points.length) return out;
  }
}

const files = readdirSync(dir).filter((f) => f.endsWith('.ndjson'));

describe('the scenario recordings', () => {
  it('cover the six shapes', () => {
    expect(files.map((f) => load(path.join(dir, f)).header.scenario).sort()).toEqual([
      'burst-idle',
      'burst-idle-jemalloc',
      'cache-plateau',
      'js-leak',
      'native-leak',
      'sawtooth',
    ]);
  });

  for (const f of files) {
    const file = path.join(dir, f);
    const { header, points } = load(file);
    describe(`${header.scenario} (${header.allocator})`, () => {
      it(`is ${header.expected} on every surface`, () => {
        const v = verdict(points);
        expect(v.kind, `${v.title}\n${v.because.join('\n')}`).toBe(header.expected);
        const doctor = spawnSync(process.execPath, [bin, 'doctor', file], { encoding: 'utf8' });
        expect(doctor.status, doctor.stderr).toBe(0);
        expect(doctor.stdout).toMatch(new RegExp(`^verdict: ${header.expected}: `));
        const json = spawnSync(process.execPath, [bin, 'report', file, '--json'], { encoding: 'utf8' });
        expect(JSON.parse(json.stdout).verdict.kind).toBe(header.expected);
        const html = path.join(work, `${header.scenario}.html`);
        expect(spawnSync(process.execPath, [bin, 'report', file, '-o', html]).status).toBe(0);
        expect(readFileSync(html, 'utf8')).toMatch(
          new RegExp(
            `<section class="verdict k-${header.expected}" id="verdict" data-kind="${header.expected}">`,
          ),
        );
      });

      // A leak or fragmentation must be named within three minutes of the load. A plateau, or
      // bursts that come back down, can be called stable only once RSS has settled (within 3% of
      // where it ends, from then to the end), and must be within three minutes of that.
      const settledAt = (() => {
        const end = points[points.length - 1].rssBytes!;
        let at = points[points.length - 1].timestamp;
        for (let i = points.length - 1; i >= 0 && Math.abs(points[i].rssBytes! - end) <= 0.03 * end; i--) {
          at = points[i].timestamp;
        }
        return at;
      })();
      const origin =
        header.expected === 'stable' ? Math.max(settledAt, header.loadStartedAt) : header.loadStartedAt;

      it('gives its verdict within three minutes, and keeps it from then on', () => {
        const steps = replay(points, origin);
        const first = steps.find(([at, kind]) => at >= 0 && kind === header.expected);
        expect(first, JSON.stringify(steps)).toBeDefined();
        expect(first![0]).toBeLessThanOrEqual(180_000);
        const later = steps.filter(([at, kind]) => at >= 180_000 && kind !== header.expected);
        expect(later, JSON.stringify(steps)).toEqual([]);
      });

      if (header.expected !== 'js-heap-growth' && header.expected !== 'native-growth') {
        // A stable service may have grown while it warmed up or filled a cache: a leak verdict
        // then is a reading of that growth; two minutes after RSS settled it must be gone.
        const from = header.expected === 'stable' ? 120_000 : 0;
        it(
          header.expected === 'stable'
            ? 'never calls it a leak two minutes after RSS settled'
            : 'never calls it a leak',
          () => {
            const leaks = replay(points, origin).filter(([at, kind]) => at >= from && /growth$/.test(kind));
            expect(leaks, JSON.stringify(leaks)).toEqual([]);
          },
        );
      }
    });
  }
});
