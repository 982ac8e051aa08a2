// The monitoring/ folder shipped with the package: the Prometheus rules, checked and unit-tested
// by promtool on series that must and must not fire each alert.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { root, systemCommand } from './helpers';

const promtool = systemCommand('promtool', 'prometheus');
const rulesDir = path.join(root, 'monitoring/prometheus');
const rulesFile = path.join(rulesDir, 'fragstat.rules.yml');
const ruleTests = readdirSync(path.join(rulesDir, 'tests')).filter((f) => f.endsWith('.test.yml'));

describe.runIf(promtool)('monitoring/prometheus/fragstat.rules.yml', () => {
  it('passes promtool check rules', () => {
    const r = spawnSync(promtool!, ['check', 'rules', rulesFile], { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toMatch(/SUCCESS: \d+ rules found/);
    expect(r.status).toBe(0);
  });

  it('has every alert tested, with a runbook anchor that docs/PRODUCTION.md has', () => {
    const rules = readFileSync(rulesFile, 'utf8');
    const alerts = [...rules.matchAll(/^\s*- alert: (\w+)$/gm)].map((m) => m[1]);
    expect(alerts.length).toBeGreaterThanOrEqual(5);
    const tests = ruleTests.map((f) => readFileSync(path.join(rulesDir, 'tests', f), 'utf8')).join('\n');
    const docs = readFileSync(path.join(root, 'docs/PRODUCTION.md'), 'utf8');
    const headings = new Set(
      [...docs.matchAll(/^#+ (.+)$/gm)].map((m) =>
        m[1]
          .trim()
          .toLowerCase()
          .replace(/[^\w\- ]/g, '')
          .replace(/ /g, '-'),
      ),
    );
    for (const alert of alerts) {
      // Fired somewhere (a non-empty exp_alerts) and expected silent somewhere.
      expect(tests, alert).toMatch(new RegExp(`alertname: ${alert}\\n\\s+exp_alerts:\\n\\s+- exp_labels`));
      expect(tests, alert).toMatch(new RegExp(`alertname: ${alert}\\n\\s+exp_alerts: \\[\\]`));
      const anchor = alert.toLowerCase();
      expect(rules).toContain(
        `runbook_url: 'https://github.com/fragstat/fragstat/blob/main/docs/PRODUCTION.md#${anchor}'`,
      );
      expect(headings.has(anchor), `docs/PRODUCTION.md has no heading for #${anchor}`).toBe(true);
    }
  });

  it.each(ruleTests)('passes promtool test rules %s', (file) => {
    const r = spawnSync(promtool!, ['test', 'rules', file], {
      cwd: path.join(rulesDir, 'tests'),
      encoding: 'utf8',
    });
    expect(r.stdout + r.stderr).toMatch(/SUCCESS/);
    expect(r.stdout + r.stderr).not.toMatch(/FAILED/);
    expect(r.status).toBe(0);
  });
});
