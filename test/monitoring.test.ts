// The monitoring/ folder shipped with the package: the Prometheus rules, checked and unit-tested
// by promtool on series that must and must not fire each alert; the Grafana dashboard, type-checked
// against @grafana/schema's Dashboard and every query of every panel run by a real Prometheus
// scraping a real service.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { nodeCommand, root, systemCommand } from './helpers';
import { startPrometheus, type PrometheusServer } from './prometheus-server';

const promtool = systemCommand('promtool', 'prometheus');
const prometheus = systemCommand('prometheus', 'prometheus');
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

const dashboardFile = path.join(root, 'monitoring/grafana/fragstat.json');

interface Target {
  refId: string;
  expr: string;
  datasource?: { type?: string; uid?: string };
}
interface PanelJson {
  title: string;
  type: string;
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
}
const dashboard = JSON.parse(readFileSync(dashboardFile, 'utf8')) as {
  panels: PanelJson[];
  templating: { list: { name: string; type: string; query: string | { query: string } }[] };
};
const queryPanels = dashboard.panels.filter((p) => p.type !== 'row');

describe('monitoring/grafana/fragstat.json', () => {
  it("type-checks against @grafana/schema's Dashboard (tsc), and a broken copy does not", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fragstat-dashboard-'));
    try {
      // The JSON as an object literal typed with the schema's Dashboard, string enums taken as
      // the strings JSON holds: tsc checks every field's type, and excess property checks catch
      // a misspelt one.
      const check = (json: string) => `import type { Dashboard } from '@grafana/schema';
type Json<T> = T extends string ? \`\${T}\` : T extends (infer U)[] ? Json<U>[] : T extends object ? { [K in keyof T]: Json<T[K]> } : T;
export const dashboard: Json<Dashboard> = ${json};
`;
      const text = readFileSync(dashboardFile, 'utf8');
      writeFileSync(path.join(dir, 'dashboard.ts'), check(text));
      // The same dashboard with a variable of a type Grafana does not have and a panel field misspelt.
      const broken = JSON.parse(text);
      broken.templating.list[1].type = 'querry';
      broken.panels[1].gridpos = broken.panels[1].gridPos;
      writeFileSync(path.join(dir, 'broken.ts'), check(JSON.stringify(broken, null, 2)));
      writeFileSync(
        path.join(dir, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            strict: true,
            noEmit: true,
            skipLibCheck: true,
            target: 'es2022',
            module: 'esnext',
            moduleResolution: 'bundler',
            types: [],
            paths: {
              '@grafana/schema': [path.join(root, 'node_modules/@grafana/schema/dist/types/index.d.ts')],
            },
          },
          files: ['dashboard.ts', 'broken.ts'],
        }),
      );
      const r = spawnSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', '.'], {
        cwd: dir,
        encoding: 'utf8',
      });
      const errors = r.stdout.split('\n').filter((l) => /error TS\d+/.test(l));
      expect(
        errors.filter((l) => l.startsWith('dashboard.ts')),
        r.stdout,
      ).toEqual([]);
      expect(errors.filter((l) => l.startsWith('broken.ts')).length, r.stdout).toBeGreaterThanOrEqual(2);
      expect(r.stdout).toMatch(/broken\.ts.*"querry"/);
      expect(r.stdout).toMatch(/broken\.ts.*gridpos/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('has job, instance and Prometheus datasource variables, used by every query', () => {
    const vars = Object.fromEntries(dashboard.templating.list.map((v) => [v.name, v]));
    expect(vars.datasource).toMatchObject({ type: 'datasource', query: 'prometheus' });
    expect(vars.job.type).toBe('query');
    expect(vars.instance.type).toBe('query');
    for (const p of queryPanels) {
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      // The data source the variable names, so an import asks for none by its id.
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      for (const t of p.targets!) {
        expect(t.datasource, `${p.title} ${t.refId}`).toEqual({ type: 'prometheus', uid: '${datasource}' });
        expect(t.expr, `${p.title} ${t.refId}`).toContain('job=~"$job"');
        expect(t.expr, `${p.title} ${t.refId}`).toContain('instance=~"$instance"');
      }
    }
    expect(queryPanels.map((p) => p.type)).toContain('state-timeline');
  });
});

/**
 * As root, a new memory cgroup under this process's own (v1 memory controller or v2) with a
 * 4 GiB limit, far above what the service uses, for the service to run in; else null.
 */
function limitedCgroup(): { dir: string; remove(): Promise<void> } | null {
  if (process.getuid?.() !== 0) return null;
  const limitBytes = 4 * 1024 * 1024 * 1024;
  try {
    const lines = readFileSync('/proc/self/cgroup', 'utf8').split('\n');
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
    const v1 = lines.find((l) => /^\d+:([^:]*,)?memory(,[^:]*)?:/.test(l));
    const mount = mounts
      .map((l) => l.split(' - '))
      .find(([, right]) =>
        v1 ? /^cgroup \S+ \S*\bmemory\b/.test(right ?? '') : (right ?? '').startsWith('cgroup2 '),
      );
    if (!mount) return null;
    const [, , , mountRoot, mountPoint] = mount[0].split(' ');
    const own = (v1 ?? lines.find((l) => l.startsWith('0::')) ?? '').replace(/^[^:]*:[^:]*:/, '');
    const relative = mountRoot !== '/' && own.startsWith(mountRoot) ? own.slice(mountRoot.length) : own;
    const dir = path.join(mountPoint, relative, `fragstat-dashboard-${process.pid}`);
    mkdirSync(dir);
    try {
      writeFileSync(path.join(dir, v1 ? 'memory.limit_in_bytes' : 'memory.max'), String(limitBytes));
    } catch {
      rmdirSync(dir);
      return null;
    }
    return {
      dir,
      // Once its last process is gone; the kernel may take a moment after the exit to let go.
      async remove() {
        for (const deadline = Date.now() + 10_000; ; await new Promise((r) => setTimeout(r, 100))) {
          try {
            return rmdirSync(dir);
          } catch (e) {
            if (Date.now() > deadline) throw e;
          }
        }
      },
    };
  } catch {
    return null;
  }
}

describe.runIf(prometheus)('the dashboard and the rules on a real Prometheus scraping a real service', () => {
  let child: ChildProcessWithoutNullStreams | undefined;
  let prom: PrometheusServer | undefined;
  let cgroup: ReturnType<typeof limitedCgroup> = null;
  afterAll(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      child.stdin.end();
      child.kill('SIGTERM');
      await exited;
    }
    prom?.stop();
    await cgroup?.remove(); // empty once the service has exited
  });

  it('returns data for every query of every panel, and loads the rules', async () => {
    // The service runs in a cgroup with a memory limit where this test can make one (root): it
    // joins the cgroup before node starts, so its first reading is already there.
    cgroup = limitedCgroup();
    const node = [...nodeCommand, path.join(root, 'test/fixtures/monitoring-service.cjs')];
    child = cgroup
      ? spawn('/bin/sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroup.dir, ...node], {
          cwd: root,
        })
      : spawn(node[0], node.slice(1), { cwd: root });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    // The service says its port and what cgroupMemory() reads in it.
    const started = await new Promise<{
      port: number;
      cgroupLimitBytes: number | null;
      cgroupUsageBytes: number | null;
    }>((resolve, reject) => {
      let out = '';
      child!.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        const line = out.split('\n').find((l) => l.startsWith('{'));
        if (line && out.includes('\n')) resolve(JSON.parse(line));
      });
      child!.on('exit', (code) => reject(new Error(`the service exited with ${code}\n${stderr}`)));
    });
    const port = started.port;
    if (started.cgroupLimitBytes === null)
      console.warn(
        `not checking the dashboard's fragstat_cgroup_memory_limit_bytes: cgroupMemory() reads no memory limit in the service's cgroup (${cgroup ? 'a new one with a 4 GiB limit' : 'not root: its own'})`,
      );
    if (started.cgroupUsageBytes === null)
      console.warn(
        "not checking the dashboard's fragstat_cgroup_memory_usage_bytes: cgroupMemory() reads no usage in the service's cgroup",
      );
    const job = 'fragstat-service';
    const instance = `127.0.0.1:${port}`;
    prom = await startPrometheus(
      prometheus!,
      [
        'global:',
        '  scrape_interval: 1s',
        'rule_files:',
        `  - ${rulesFile}`,
        'scrape_configs:',
        `  - job_name: ${job}`,
        '    static_configs:',
        `      - targets: ['${instance}']`,
        '',
      ].join('\n'),
    );

    // Each query as Grafana sends it for one job and instance ($__rate_interval: four scrapes
    // and more; 30 s here).
    const substitute = (expr: string) =>
      expr
        .replaceAll('$job', job)
        .replaceAll('$instance', instance.replace(/\./g, '\\\\.'))
        .replaceAll('$__rate_interval', '30s');
    const wanted = queryPanels
      .flatMap((p) => p.targets!.map((t) => ({ name: `${p.title} / ${t.refId}`, expr: substitute(t.expr) })))
      .filter(
        (q) =>
          !(/cgroup_memory_limit_bytes/.test(q.expr) && started.cgroupLimitBytes === null) &&
          !(/cgroup_memory_usage_bytes/.test(q.expr) && started.cgroupUsageBytes === null),
      );
    // The variables' queries: label_values(fragstat_rss_bytes, job) and (…{job=~"$job"}, instance).
    const labelValues = async (label: string, match: string) =>
      (
        await prom!.api<{ data: string[] }>(
          `/api/v1/label/${label}/values?match[]=${encodeURIComponent(match)}`,
        )
      )?.data ?? [];

    // The verdict's growth needs the monitor's first 90 s of readings: poll until every query
    // has data or the deadline passes, then name those still empty.
    const empty = new Set(wanted.map((q) => q.name));
    const deadline = Date.now() + 240_000;
    while (empty.size > 0 && Date.now() < deadline) {
      for (const q of wanted) {
        if (!empty.has(q.name)) continue;
        const result = await prom.query(q.expr);
        if (result !== null && result.length > 0) empty.delete(q.name);
      }
      if (empty.size > 0) await new Promise((r) => setTimeout(r, 2000));
    }
    expect([...empty]).toEqual([]);
    expect(await labelValues('job', 'fragstat_rss_bytes')).toContain(job);
    expect(await labelValues('instance', `fragstat_rss_bytes{job=~"${job}"}`)).toContain(instance);

    // The panels show this service's figures: the verdict is one of the five kinds' codes, and RSS
    // comes in the breakdown's seven parts.
    const verdict = queryPanels.find((p) => p.type === 'state-timeline')!.targets![0];
    const code = await prom.query(substitute(verdict.expr));
    expect(code).toHaveLength(1);
    expect([1, 2, 3, 4, 5]).toContain(Number(code![0].value[1]));
    const parts = queryPanels.find((p) => p.title === 'RSS by part')!.targets![0];
    expect((await prom.query(substitute(parts.expr)))!.map((r) => r.metric.part).sort()).toEqual(
      ['allocatorOverhead', 'code', 'mallocFreeResident', 'mallocLive', 'other', 'stacks', 'v8Heap'].sort(),
    );

    // The limit line is the service's cgroup limit (the 4 GiB set here, where this test made the cgroup).
    if (started.cgroupLimitBytes !== null) {
      const limit = await prom.query(`fragstat_cgroup_memory_limit_bytes{job="${job}"}`);
      expect(Number(limit![0].value[1])).toBe(started.cgroupLimitBytes);
      if (cgroup) expect(started.cgroupLimitBytes).toBeLessThanOrEqual(4 * 1024 * 1024 * 1024);
    }

    // Prometheus loaded both groups of rules.
    const rules = await prom.api<{ data: { groups: { name: string; rules: { name: string }[] }[] } }>(
      '/api/v1/rules',
    );
    expect(rules!.data.groups.map((g) => g.name).sort()).toEqual(['fragstat.alerts', 'fragstat.recording']);
    expect(rules!.data.groups.flatMap((g) => g.rules.map((r) => r.name))).toContain('FragstatNativeGrowth');
  }, 300_000);
});
