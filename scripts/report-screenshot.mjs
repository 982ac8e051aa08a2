// Makes docs/report.png: runs the stair-step service (examples/stairstep) under
// `fragstat run --report` with fragstat's auto-trim, drives four bursts of growing bodies at it,
// stops it, and photographs the report in headless chromium. About 70 seconds.
//
//   node scripts/report-screenshot.mjs [--keep DIR]   (--keep also leaves the HTML and NDJSON there)
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const autocannon = require('autocannon');
const { chromium } = require('playwright-core');
const root = fileURLToPath(new URL('..', import.meta.url));
const keep = process.argv.includes('--keep') ? process.argv[process.argv.indexOf('--keep') + 1] : null;
const dir = keep ?? mkdtempSync(path.join(os.tmpdir(), 'fragstat-report-'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function body(kb, v) {
  const items = [];
  const target = ((kb * 1024) / 4) * (1 + (3 * v) / 7);
  for (let i = 0, size = 20; size < target; i++) {
    const item = { id: i, name: `item-${i}-${'x'.repeat((i * 7 + v * 13) % 60)}`, n: i * v };
    items.push(item);
    size += JSON.stringify(item).length + 1;
  }
  return JSON.stringify({ items });
}

const html = path.join(dir, 'report.html');
const child = spawn(
  process.execPath,
  [
    path.join(root, 'bin/fragstat.js'),
    'run',
    '--interval',
    '250ms',
    '--quiet',
    '--report',
    html,
    '--out',
    path.join(dir, 'samples.ndjson'),
    '--',
    'node',
    'examples/stairstep/service.js',
  ],
  { cwd: root, env: { ...process.env, STAIRSTEP_AUTOTRIM: '1' }, stdio: ['ignore', 'pipe', 'inherit'] },
);
const url = await new Promise((resolve, reject) => {
  child.stdout.on('data', (d) => {
    const m = /listening on (\S+)/.exec(String(d));
    if (m) resolve(m[1]);
  });
  child.on('exit', (code) => reject(new Error(`the service exited with ${code}`)));
});
await sleep(3000);
for (const [kb, connections] of [
  [16, 16],
  [64, 32],
  [256, 64],
  [1024, 64],
]) {
  const requests = Array.from({ length: 8 }, (_, v) => ({
    method: 'POST',
    body: body(kb, v),
    headers: { 'content-type': 'application/json' },
  }));
  await autocannon({ url, connections, duration: 5, requests });
  await sleep(8000);
}
await sleep(6000);
child.kill('SIGTERM');
await new Promise((r) => child.on('close', r));

const profile = mkdtempSync(path.join(os.tmpdir(), 'fragstat-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1040, height: 1200 },
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
const page = await context.newPage();
await page.goto(`file://${html}`);
// The header, the verdict and the charts: what a reader looks at first.
const bottom = await page.evaluate(() => {
  const r = document.getElementById('doctor').getBoundingClientRect();
  return Math.ceil(r.bottom + window.scrollY + 8);
});
await page.screenshot({
  path: path.join(root, 'docs/report.png'),
  fullPage: true,
  clip: { x: 0, y: 0, width: 1040, height: bottom },
});
await context.close();
rmSync(profile, { recursive: true, force: true });
if (!keep) rmSync(dir, { recursive: true, force: true });
console.log('wrote docs/report.png');
