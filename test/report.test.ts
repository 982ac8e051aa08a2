// The HTML report: rendered from a real `fragstat run --report`, opened in a real headless
// browser, and checked against the samples the same run recorded.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fragstat from '..';
import { renderReport, type ReportSample } from '../src/report/report';
import { MiB, root } from './helpers';

const bin = path.join(root, 'bin/fragstat.js');
const fixture = path.join(root, 'test/fixtures/report-app.cjs');
const dir = mkdtempSync(path.join(os.tmpdir(), 'fragstat-report-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const chromiumPath = '/usr/bin/chromium';
function haveChromium(): boolean {
  if (existsSync(chromiumPath)) return true;
  const msg = `${chromiumPath} not found (Debian: apt-get install chromium)`;
  if (process.env.FRAGSTAT_REQUIRE_SYSTEM === '1')
    throw new Error(`${msg}, and FRAGSTAT_REQUIRE_SYSTEM=1 requires it`);
  console.warn(`skipping the browser tests: ${msg}`);
  return false;
}

// Arguments the application ignores and the report must show as text, never as markup.
const hostile = [
  '<script>window.__pwned=1</script>',
  `"><img src=x onerror="window.__pwned=2">`,
  "it's & <b>",
];

const env = () => {
  const e: Record<string, string | undefined> = {
    ...process.env,
    FRAGSTAT_DIST: path.join(root, 'dist/index.js'),
  };
  delete e.LD_PRELOAD;
  return e;
};

const readLines = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

const hasVerdict = typeof (fragstat as Record<string, unknown>).verdict === 'function';
const hasBreakdown = typeof (fragstat as Record<string, unknown>).breakdownAsync === 'function';

describe('renderReport', () => {
  const synthetic = (n: number): ReportSample[] =>
    Array.from({ length: n }, (_, i) => ({
      timestamp: 1_700_000_000_000 + i * 1000,
      rssBytes: (100 + (i % 97) + (i === 31_337 ? 400 : 0)) * MiB,
      allocatedBytes: (40 + (i % 13)) * MiB,
      freeBytes: (20 + (i % 7)) * MiB,
      heapBytes: (60 + (i % 13) + (i % 7)) * MiB,
      v8HeapBytes: 10 * MiB,
      ratios: { fragmentation: (20 + (i % 7)) / (60 + (i % 13) + (i % 7)) },
    }));

  it('stays bounded for 50,000 samples and keeps a single-sample spike', () => {
    const html = renderReport({ samples: synthetic(50_000), generatedAt: Date.now() });
    expect(html.length).toBeLessThan(1.5e6);
    const rssLine = /<polyline class="line" data-series="RSS"[^>]* points="([^"]+)"/.exec(html);
    expect(rssLine).not.toBeNull();
    const points = rssLine![1].split(' ').map((p) => p.split(',').map(Number));
    // At most two points (min and max) per pixel column, of which there are fewer than 1000.
    expect(points.length).toBeLessThanOrEqual(2 * 1000);
    expect(points.length).toBeGreaterThan(500);
    // The 500 MiB spike at one sample out of 50,000 is drawn: its point is the highest (lowest y).
    const minY = points.reduce((m, p) => Math.min(m, p[1]), Infinity);
    const peakTable = /data-figure="rssBytes.max" data-bytes="(\d+)"/.exec(html);
    expect(Number(peakTable![1])).toBe((100 + (31_337 % 97) + 400) * MiB);
    const yOfOthers = points.filter((p) => p[1] !== minY);
    expect(yOfOthers.length).toBe(points.length - 1);
  });

  it('stacks the breakdown parts, marks estimates, and shows the verdict with its evidence', () => {
    const samples = synthetic(60);
    const breakdowns = samples
      .filter((_, i) => i % 10 === 0)
      .map((s) => {
        const parts = {
          v8Heap: 10 * MiB,
          mallocLive: s.allocatedBytes!,
          mallocFreeResident: s.freeBytes!,
          allocatorOverhead: MiB,
          code: 40 * MiB,
          stacks: MiB,
          other: 0,
        };
        parts.other = s.rssBytes! - Object.values(parts).reduce((a, b) => a + b, 0);
        return { timestamp: s.timestamp, rssBytes: s.rssBytes!, parts, partial: ['allocatorOverhead'] };
      });
    const evidence = {
      rssBytesPerHour: 7 * MiB,
      liveBytesPerHour: 0,
      r2: 0.91,
      samples: 60,
      windowMs: 59_000,
    };
    const html = renderReport({
      samples,
      breakdowns,
      verdict: { kind: 'fragmentation', title: 't', advice: 'a', evidence },
      generatedAt: Date.now(),
    });
    const bands = [...html.matchAll(/<path class="area" data-series="([^"]+)"[^>]* d="([^"]+)"/g)];
    expect(bands.map((b) => b[1])).toEqual([
      'V8 heap',
      'malloc live',
      'malloc free (resident)',
      'allocator overhead (estimate)',
      'code and mapped files',
      'thread stacks',
      'other (unattributed)',
    ]);
    // Each band's height on the chart is its share of the axis: the 40 MiB of code is four times
    // the 10 MiB of V8 heap.
    const height = (d: string) => {
      const ys = d.match(/[\d.]+,([\d.]+)/g)!.map((p) => Number(p.split(',')[1]));
      const first = ys[0];
      const last = ys[ys.length - 1]; // the lower edge comes back to the first column
      return last - first;
    };
    expect(height(bands[4][2]) / height(bands[0][2])).toBeCloseTo(4, 1);
    const last = breakdowns[breakdowns.length - 1];
    for (const [part, bytes] of Object.entries(last.parts)) {
      expect(html).toContain(`data-part="${part}" data-bytes="${bytes}"`);
    }
    expect(html).toContain('data-kind="fragmentation"');
    for (const [key, value] of Object.entries(evidence)) {
      expect(html).toContain(`data-key="${key}" data-value="${value}"`);
    }
    expect(html).toContain('7.0 MiB/h');
  });

  it('escapes every string it is given', () => {
    const evil = '<script>x()</script>"\'&';
    const html = renderReport({
      command: ['node', evil],
      pid: 1,
      allocator: evil,
      samples: synthetic(3),
      trims: [{ timestamp: 1_700_000_001_000, releasedBytes: MiB }],
      verdict: { kind: evil, title: evil, advice: evil, evidence: { [evil]: 1 } },
      findings: [{ id: evil, severity: evil, title: evil, advice: evil, numbers: { [evil]: 2 } }],
      findingsNote: evil,
      environment: { [evil]: evil },
      status: evil,
      generatedAt: Date.now(),
    });
    expect(html.match(/<script/g)).toHaveLength(1); // the report's own tooltip script
    expect(html).not.toContain('x()</script>');
    expect(html).not.toMatch(/"'&(?!amp;|lt;|gt;|quot;|#39;)/);
    expect(html).toContain('&lt;script&gt;x()&lt;/script&gt;&quot;&#39;&amp;');
  });
});

describe.runIf(haveChromium())('fragstat run --report, in a browser', () => {
  const report = path.join(dir, 'run.html');
  const out = path.join(dir, 'run.ndjson');
  let lines: Record<string, unknown>[];
  let samples: Record<string, unknown>[];
  let context: BrowserContext;
  let runStderr = '';

  beforeAll(async () => {
    const r = spawnSync(
      process.execPath,
      [
        bin,
        'run',
        '--interval',
        '100ms',
        '--quiet',
        '--report',
        report,
        '--out',
        out,
        '--',
        process.execPath,
        '--expose-gc',
        fixture,
        ...hostile,
      ],
      { cwd: root, env: env(), encoding: 'utf8', timeout: 60_000 },
    );
    runStderr = r.stderr;
    expect(r.status).toBe(0);
    lines = readLines(out);
    samples = lines.filter((l) => typeof l.timestamp === 'number' && 'rssBytes' in l);
    context = await chromium.launchPersistentContext(mkdtempSync(path.join(dir, 'profile-')), {
      executablePath: chromiumPath,
      headless: true,
      viewport: { width: 1100, height: 900 },
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });
  afterAll(async () => {
    await context?.close();
  });

  it('renders offline without errors, with charts drawn from every sample', async () => {
    expect(runStderr).toContain(`[fragstat] wrote ${report} (${samples.length} samples)`);
    const page = await context.newPage();
    const problems: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('dialog', (d) => {
      problems.push(`dialog: ${d.message()}`);
      void d.dismiss();
    });
    page.on('request', (r) => requests.push(r.url()));
    const url = `file://${report}`;
    await page.goto(url);

    const drawn = await page.evaluate(() => {
      const line = (id: string, series: string) =>
        document
          .querySelector(`#${id} polyline[data-series="${series}"]`)
          ?.getAttribute('points')
          ?.trim()
          .split(/\s+/).length ?? 0;
      const bands = [...document.querySelectorAll('#chart-rss path.area')].map((p) => ({
        series: p.getAttribute('data-series'),
        height: (p as SVGGraphicsElement).getBBox().height,
      }));
      return {
        rssPoints: line('chart-rss', 'RSS'),
        allocatedPoints: line('chart-allocator', 'allocated (live)'),
        fragmentationPoints: line('chart-fragmentation', 'fragmentation'),
        bands,
        trimMarkers: document.querySelectorAll('#chart-rss line.trim').length,
        pwned: (window as unknown as { __pwned?: number }).__pwned ?? null,
        injected: document.querySelectorAll('img, header b').length,
        command: document.getElementById('command')?.textContent ?? '',
      };
    });
    // One column per sample at this length: one point per sample on each line.
    expect(drawn.rssPoints).toBe(samples.length);
    expect(drawn.allocatedPoints).toBe(samples.length);
    expect(drawn.fragmentationPoints).toBe(samples.length);
    const live = drawn.bands.find((b) => b.series === 'malloc live');
    expect(live?.height).toBeGreaterThan(10);
    for (const b of drawn.bands) expect(b.height).toBeGreaterThanOrEqual(0);
    // The fixture trims once; the hook saw it through the trim log.
    const trims = lines.filter((l) => l.trim);
    expect(trims.length).toBe(1);
    expect(drawn.trimMarkers).toBe(trims.length);

    // The hostile arguments are shown as text and did nothing.
    expect(drawn.pwned).toBeNull();
    expect(drawn.injected).toBe(0);
    for (const h of hostile) expect(drawn.command).toContain(h.includes("'") ? "it'\\''s & <b>" : h);

    // Hovering a chart shows the sample under the pointer.
    const box = (await page.locator('#chart-rss').boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.4, box.y + box.height * 0.5);
    const tip = page.locator('#tip');
    await expect.poll(() => tip.isVisible()).toBe(true);
    expect(await tip.textContent()).toMatch(/RSS\s+[\d.]+ MiB/);

    expect(problems).toEqual([]);
    expect(requests).toEqual([url]);
    await page.close();
  });

  it('shows the figures, trims and verdict of the recorded samples', async () => {
    const page = await context.newPage();
    await page.goto(`file://${report}`);
    const cells = await page.evaluate(() =>
      Object.fromEntries(
        [...document.querySelectorAll('[data-figure]')].map((c) => [
          c.getAttribute('data-figure'),
          Number(c.getAttribute('data-bytes')),
        ]),
      ),
    );
    const rss = samples.map((s) => s.rssBytes as number);
    const allocated = samples.map((s) => s.allocatedBytes as number);
    expect(cells['rssBytes.first']).toBe(rss[0]);
    expect(cells['rssBytes.last']).toBe(rss[rss.length - 1]);
    expect(cells['rssBytes.max']).toBe(rss.reduce((a, b) => Math.max(a, b)));
    expect(cells['allocatedBytes.max']).toBe(allocated.reduce((a, b) => Math.max(a, b)));
    // The fixture holds 80 MiB of Buffers at its peak and keeps a quarter.
    expect(cells['allocatedBytes.max'] - cells['allocatedBytes.first']).toBeGreaterThan(75 * MiB);
    expect(cells['allocatedBytes.max'] - cells['allocatedBytes.last']).toBeGreaterThan(55 * MiB);

    const trim = lines.find((l) => l.trim)!.trim as { releasedBytes: number };
    expect(Number(await page.locator('table.trims td[data-bytes]').getAttribute('data-bytes'))).toBe(
      trim.releasedBytes,
    );

    if (hasVerdict) {
      const verdict = (
        fragstat as unknown as {
          verdict: (p: unknown[]) => { kind: string; evidence: Record<string, number> };
        }
      ).verdict(samples);
      expect(await page.locator('#verdict').getAttribute('data-kind')).toBe(verdict.kind);
      const evidence = await page.evaluate(() =>
        Object.fromEntries(
          [...document.querySelectorAll('table.evidence td[data-key]')].map((c) => [
            c.getAttribute('data-key'),
            Number(c.getAttribute('data-value')),
          ]),
        ),
      );
      // (A short recording gives 'insufficient-evidence', whose evidence is null: no table rows.)
      expect(evidence).toEqual(verdict.evidence ?? {});
    } else {
      expect(await page.locator('#verdict').textContent()).toContain(
        'This version of fragstat has no verdict()',
      );
    }
    const env = await page.locator('table.environment').textContent();
    expect(env).toContain(process.version);
    expect(env).toContain('--expose-gc');
    await page.close();
  });

  it.runIf(hasBreakdown)('draws the recorded breakdowns, whose parts add up to RSS', async () => {
    const breakdowns = lines
      .filter((l) => l.breakdown)
      .map((l) => l.breakdown as { rssBytes: number; parts: Record<string, number> });
    expect(breakdowns.length).toBeGreaterThanOrEqual(1);
    const last = breakdowns[breakdowns.length - 1];
    const page = await context.newPage();
    await page.goto(`file://${report}`);
    const parts = await page.evaluate(() =>
      Object.fromEntries(
        [...document.querySelectorAll('table.breakdown td[data-part]')].map((c) => [
          c.getAttribute('data-part'),
          Number(c.getAttribute('data-bytes')),
        ]),
      ),
    );
    const { rssBytes, ...rest } = parts;
    expect(rssBytes).toBe(last.rssBytes);
    expect(rest).toEqual(last.parts);
    await page.close();
  });

  it('fragstat report renders the same figures from the recording, and --json prints the verdict', () => {
    const again = path.join(dir, 'again.html');
    const r = spawnSync(process.execPath, [bin, 'report', out, '-o', again, '--json'], {
      cwd: root,
      env: env(),
      encoding: 'utf8',
    });
    expect(r.status).toBe(0);
    const html = readFileSync(again, 'utf8');
    const last = samples[samples.length - 1];
    expect(html).toContain(`data-figure="rssBytes.last" data-bytes="${String(last.rssBytes)}"`);
    expect(html).toContain('&lt;script&gt;window.__pwned=1&lt;/script&gt;');
    const json = JSON.parse(r.stdout) as Record<string, unknown>;
    const breakdowns = lines.filter((l) => l.breakdown).map((l) => l.breakdown);
    expect(json.breakdown).toEqual(breakdowns.length ? breakdowns[breakdowns.length - 1] : null);
    const findings = lines.filter((l) => l.findings).map((l) => l.findings);
    expect(json.findings).toEqual(findings[findings.length - 1]);
    if (hasVerdict) expect((json.verdict as { kind: string }).kind).toMatch(/./);
    else expect(json.verdictUnavailable).toMatch(/no verdict/);
  });
});

describe('fragstat run --report on demand', () => {
  it('writes the report on SIGUSR2 while the application runs, and again when it ends', async () => {
    const report = path.join(dir, 'live.html');
    const out = path.join(dir, 'live.ndjson');
    const cli = spawn(
      process.execPath,
      [
        bin,
        'run',
        '--interval',
        '50ms',
        '--quiet',
        '--report',
        report,
        '--out',
        out,
        '--',
        process.execPath,
        '-e',
        'setInterval(() => {}, 1000)',
      ],
      { cwd: root, env: env(), stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    cli.stderr.on('data', (d) => (stderr += d));
    const closed = new Promise<number | null>((resolve) => cli.on('close', resolve));
    const sampleCount = () =>
      existsSync(out)
        ? readFileSync(out, 'utf8')
            .split('\n')
            .filter((l) => l.includes('"rssBytes"')).length
        : 0;
    await expect.poll(sampleCount, { timeout: 20_000 }).toBeGreaterThanOrEqual(3);
    expect(existsSync(report)).toBe(false);
    cli.kill('SIGUSR2');
    await expect.poll(() => existsSync(report), { timeout: 20_000 }).toBe(true);
    const live = readFileSync(report, 'utf8');
    expect(live).toContain('running (report taken on demand)');
    const written = Number(/data-figure="rssBytes.last" data-bytes="(\d+)"/.exec(live)?.[1]);
    // The recording's writes are asynchronous: the sample the report drew reaches the file soon.
    const recorded = () =>
      readLines(out).flatMap((l) => (typeof l.rssBytes === 'number' ? [l.rssBytes] : []));
    await expect.poll(recorded, { timeout: 20_000 }).toContain(written);

    cli.kill('SIGTERM');
    expect(await closed).toBe(128 + os.constants.signals.SIGTERM);
    expect(readFileSync(report, 'utf8')).toContain('ended by SIGTERM');
    expect(stderr.match(/\[fragstat\] wrote /g)).toHaveLength(2);
  });

  it('fails before starting the application when the report cannot be written', () => {
    const r = spawnSync(
      process.execPath,
      [bin, 'run', '--report', path.join(dir, 'no/such/dir/r.html'), '--', process.execPath, '-e', '0'],
      { cwd: root, env: env(), encoding: 'utf8' },
    );
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^fragstat: cannot write .*r\.html: ENOENT/);
  });
});
