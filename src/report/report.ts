// The HTML report: one self-contained file (inline CSS and SVG, a few lines of script for
// tooltips, nothing fetched) that shows where a process's memory went over a run. Pure: it
// formats what it is given and reads nothing itself, so it renders the same from a live run, a
// recording or a test's made-up input.
import { createHash } from 'node:crypto';
import { esc } from './chart';
import type { ReportInput, ReportSample } from './input';
import { breakdownParts } from './input';
import { script, style, table, td, tdNum } from './page';
import { formatDuration, formatFigure, mib, num, partStyle, shellWord } from './text';
import { chart, timeAxis, type AreaSeries, type LineSeries } from './time-chart';

export * from './input';
export { formatDuration, formatFigure, num } from './text';

/** Renders the report: one HTML document, every string from the input escaped. */
export function renderReport(input: ReportInput): string {
  // Sorted by time, bad rows dropped: a recording can hold torn or foreign lines.
  const samples = input.samples
    .filter((s) => s && num(s.timestamp))
    .slice()
    .sort((a, b) => a.timestamp - b.timestamp);
  const breakdowns = (input.breakdowns ?? [])
    .filter((b) => b && num(b.timestamp) && b.parts && typeof b.parts === 'object')
    .slice()
    .sort((a, b) => a.timestamp - b.timestamp);
  const trims = (input.trims ?? []).filter((t) => t && num(t.timestamp));
  const n = samples.length;
  const times = Float64Array.from(samples, (s) => s.timestamp);
  const first = n ? samples[0] : null;
  const last = n ? samples[n - 1] : null;
  const t0 = Math.min(first?.timestamp ?? Infinity, breakdowns[0]?.timestamp ?? Infinity);
  const t1 = Math.max(
    last?.timestamp ?? -Infinity,
    breakdowns[breakdowns.length - 1]?.timestamp ?? -Infinity,
  );
  const axis = num(t0) && num(t1) ? timeAxis(t0, t1) : null;
  const col = <K extends keyof ReportSample>(k: K) => samples.map((s) => s[k] as number | null | undefined);
  const rss = col('rssBytes');
  const allocated = col('allocatedBytes');
  const free = col('freeBytes');
  const heap = col('heapBytes');
  const residentFree = col('residentFreeBytes');
  const v8 = col('v8HeapBytes');
  const frag = samples.map((s) => (num(s.ratios?.fragmentation) ? s.ratios!.fragmentation! : null));
  const has = (values: (number | null | undefined)[]) => values.some(num);

  const tip = (i: number) => {
    const s = samples[i];
    const lines = [`t = ${formatDuration(s.timestamp - t0)}`, `RSS        ${mib(s.rssBytes)}`];
    if (num(s.v8HeapBytes)) lines.push(`V8 heap    ${mib(s.v8HeapBytes)}`);
    if (num(s.allocatedBytes)) lines.push(`allocated  ${mib(s.allocatedBytes)}`);
    if (num(s.freeBytes)) lines.push(`free       ${mib(s.freeBytes)}`);
    if (num(s.residentFreeBytes)) lines.push(`free (res) ${mib(s.residentFreeBytes)}`);
    if (num(s.heapBytes)) lines.push(`heap       ${mib(s.heapBytes)}`);
    if (num(frag[i])) lines.push(`frag.      ${(frag[i]! * 100).toFixed(1)}%`);
    return lines.join('\n');
  };

  const charts: string[] = [];
  let breakdownNote = '';
  if (axis) {
    // The stacked RSS: from the recorded breakdowns when there are at least two, else from the
    // samples' own figures, with everything they cannot place in one band.
    let areas: AreaSeries[];
    if (breakdowns.length >= 2) {
      const bt = Float64Array.from(breakdowns, (b) => b.timestamp);
      const partial = new Set(breakdowns[breakdowns.length - 1].partial ?? []);
      areas = breakdownParts.map((p) => ({
        label: `${partStyle[p].label}${partial.has(p) ? ' (estimate)' : ''}`,
        color: partStyle[p].color,
        times: bt,
        values: breakdowns.map((b) => (num(b.parts[p]) ? b.parts[p] : 0)),
      }));
      breakdownNote =
        `${breakdowns.length} breakdowns of RSS into parts that add up to it` +
        (partial.size ? `; estimated under this allocator: ${[...partial].join(', ')}` : '') +
        '. The black line is RSS at every sample.';
    } else {
      const bands = {
        v8: new Float64Array(n),
        live: new Float64Array(n),
        free: new Float64Array(n),
        rest: new Float64Array(n),
      };
      for (let i = 0; i < n; i++) {
        const total = num(rss[i]) ? rss[i]! : 0;
        let left = total;
        const take = (v: number | null | undefined) => {
          const x = num(v) ? Math.max(0, Math.min(v, left)) : 0;
          left -= x;
          return x;
        };
        bands.v8[i] = take(v8[i]);
        bands.live[i] = take(allocated[i]);
        bands.free[i] = take(num(residentFree[i]) ? residentFree[i] : free[i]);
        bands.rest[i] = left;
      }
      areas = [
        ...(has(v8) ? [{ label: 'V8 heap', color: partStyle.v8Heap.color, times, values: bands.v8 }] : []),
        ...(has(allocated)
          ? [{ label: 'malloc live', color: partStyle.mallocLive.color, times, values: bands.live }]
          : []),
        ...(has(free) || has(residentFree)
          ? [
              {
                label: has(residentFree) ? 'malloc free (resident)' : 'malloc free',
                color: partStyle.mallocFreeResident.color,
                times,
                values: bands.free,
              },
            ]
          : []),
        { label: 'rest of RSS', color: partStyle.other.color, times, values: bands.rest },
      ];
      const known = [
        has(v8) ? 'V8 heap' : '',
        has(allocated) ? 'malloc live' : '',
        has(free) || has(residentFree) ? 'malloc free' : '',
      ].filter(Boolean);
      breakdownNote = known.length
        ? `No breakdown was recorded: the bands come from the samples (${known.join(', ')}), stacked in ` +
          'that order and cut at RSS; "rest of RSS" is everything else (code, stacks, allocator metadata, ' +
          'other mappings)' +
          (has(free) && !has(residentFree)
            ? '. This allocator\u2019s free figure may count pages already returned to the OS.'
            : '.')
        : 'No breakdown was recorded, and the samples carry no allocator figures to split RSS with.';
    }
    charts.push(
      chart({
        id: 'chart-rss',
        title: 'Resident memory (RSS) by part',
        height: 340,
        axis,
        times,
        areas,
        lines: [{ label: 'RSS', color: '#111', values: rss, width: 1.5 }],
        unit: 'MiB',
        trims,
        tip,
      }),
    );
    const lines: LineSeries[] = [];
    if (has(allocated)) lines.push({ label: 'allocated (live)', color: '#2ca02c', values: allocated });
    if (has(free)) lines.push({ label: 'free', color: '#d62728', values: free });
    if (has(residentFree))
      lines.push({ label: 'free, resident', color: '#ff7f0e', values: residentFree, dash: true });
    if (has(heap)) lines.push({ label: 'heap (live + free)', color: '#1f77b4', values: heap });
    if (lines.length)
      charts.push(
        chart({
          id: 'chart-allocator',
          title: 'The allocator: live, free and heap',
          height: 280,
          axis,
          times,
          lines,
          unit: 'MiB',
          trims,
          tip,
        }),
      );
    if (has(frag))
      charts.push(
        chart({
          id: 'chart-fragmentation',
          title: 'Fragmentation: free / heap',
          height: 220,
          axis,
          times,
          lines: [{ label: 'fragmentation', color: '#9467bd', values: frag }],
          unit: '%',
          trims,
          tip,
        }),
      );
  }

  // Header.
  const cmd = input.command?.length ? input.command.map(shellWord).join(' ') : null;
  const env = input.environment ?? {};
  const allocatorName = input.allocator ?? null;
  const meta: [string, string][] = [
    ['command', cmd ?? 'n/a'],
    [
      'allocator',
      allocatorName
        ? `${allocatorName}${env['allocator version'] ? ` ${env['allocator version']}` : ''}`
        : 'n/a',
    ],
    ['pid', num(input.pid) ? String(input.pid) : 'n/a'],
    ['duration', axis ? formatDuration(axis.t1 - axis.t0) : 'n/a'],
    ['samples', String(n)],
    ['started', first ? new Date(first.timestamp).toISOString() : 'n/a'],
    ['status', input.status ?? 'n/a'],
    ['report written', new Date(input.generatedAt).toISOString()],
  ];

  // Verdict.
  let verdictHtml: string;
  const v = input.verdict;
  if (v && 'kind' in v) {
    const ev = Object.entries(v.evidence ?? {}).filter(([, x]) => typeof x === 'number');
    const because = Array.isArray(v.because) ? v.because.filter((x) => typeof x === 'string') : [];
    const firmness =
      typeof v.confidence === 'string'
        ? `<p class="confidence" data-confidence="${esc(v.confidence)}">Confidence: ${esc(v.confidence)}` +
          (num(v.waitMs)
            ? ` (about ${esc(formatDuration(v.waitMs))} more sampling would make it firmer)`
            : '') +
          '</p>'
        : '';
    verdictHtml =
      `<section class="verdict k-${esc(v.kind)}" id="verdict" data-kind="${esc(v.kind)}">` +
      `<h2>Verdict</h2><h3><span class="badge">${esc(v.kind)}</span>${esc(v.title)}</h3>` +
      firmness +
      (because.length
        ? `<ul class="because">${because.map((x) => `<li>${esc(x)}</li>`).join('')}</ul>`
        : '') +
      `<pre class="advice">${esc(v.advice)}</pre>` +
      (ev.length
        ? '<details><summary>The figures behind it</summary>' +
          table(
            ['evidence', 'value'],
            ev.map(([k, x]) => [
              `<td><code>${esc(k)}</code></td>`,
              tdNum(formatFigure(k, x), { key: k, value: x }),
            ]),
            'evidence',
          ) +
          '</details>'
        : '') +
      '</section>';
  } else {
    const why = v && 'unavailable' in v ? v.unavailable : 'No verdict was computed for this report.';
    verdictHtml = `<section class="verdict k-unavailable" id="verdict"><h2>Verdict</h2><p>${esc(why)}</p></section>`;
  }

  // Doctor.
  const findings = input.findings;
  let doctorHtml = '<section id="doctor"><h2>The doctor\u2019s findings</h2>';
  if (!findings) doctorHtml += '<p>Not available: no sample to examine.</p>';
  else if (findings.length === 0) doctorHtml += '<p>Nothing to act on in the last sample.</p>';
  else
    for (const x of findings) {
      const nums = Object.entries(x.numbers ?? {}).filter(([, y]) => typeof y === 'number');
      doctorHtml +=
        `<div class="finding" data-id="${esc(x.id)}"><div><span class="badge sev-${esc(x.severity)}">${esc(x.severity)}</span>` +
        `<strong>${esc(x.title)}</strong> <code class="note">${esc(x.id)}</code></div>` +
        `<pre>${esc(x.advice)}</pre>` +
        (nums.length
          ? `<div class="note">${nums.map(([k, y]) => `${esc(k)} ${esc(formatFigure(k, y))}`).join(' \u00b7 ')}</div>`
          : '') +
        '</div>';
    }
  if (input.findingsNote) doctorHtml += `<p class="note">${esc(input.findingsNote)}</p>`;
  doctorHtml += '</section>';

  // Figures over the run.
  const figureRows: string[][] = [];
  const figure = (label: string, key: string, values: (number | null | undefined)[]) => {
    let lo = Infinity;
    let hi = -Infinity;
    let a: number | null = null;
    let z: number | null = null;
    for (const x of values) {
      if (!num(x)) continue;
      if (a === null) a = x;
      z = x;
      if (x < lo) lo = x;
      if (x > hi) hi = x;
    }
    if (a === null || z === null) return;
    const cell = (b: number, what: string) => tdNum(mib(b), { figure: `${key}.${what}`, bytes: b });
    figureRows.push([td(label), cell(a, 'first'), cell(z, 'last'), cell(lo, 'min'), cell(hi, 'max')]);
  };
  figure('RSS', 'rssBytes', rss);
  figure('V8 heap', 'v8HeapBytes', v8);
  figure('allocated (live)', 'allocatedBytes', allocated);
  figure('free', 'freeBytes', free);
  figure('free, resident', 'residentFreeBytes', residentFree);
  figure('heap', 'heapBytes', heap);

  // The last breakdown, part by part.
  const lb = breakdowns[breakdowns.length - 1];
  const breakdownTable = lb
    ? `<h3>Last breakdown (${esc(new Date(lb.timestamp).toISOString())})</h3>` +
      table(
        ['part', 'MiB', 'share of RSS'],
        [
          ...breakdownParts.map((p) => [
            td(`${partStyle[p].label}${lb.partial?.includes(p) ? ' (estimate)' : ''}`),
            tdNum(mib(lb.parts[p]), { part: p, bytes: lb.parts[p] }),
            tdNum(
              lb.rssBytes > 0 && num(lb.parts[p])
                ? `${((lb.parts[p] / lb.rssBytes) * 100).toFixed(1)}%`
                : 'n/a',
            ),
          ]),
          [td('RSS'), tdNum(mib(lb.rssBytes), { part: 'rssBytes', bytes: lb.rssBytes }), tdNum('100%')],
        ],
        'breakdown',
      )
    : '';

  const trimsHtml = trims.length
    ? `<section id="trims"><h2>Trims</h2>` +
      table(
        ['at', 'released', 'RSS before', 'RSS after', 'took'],
        trims.map((t) => [
          td(`+${formatDuration(t.timestamp - t0)}`),
          tdNum(mib(t.releasedBytes), num(t.releasedBytes) ? { bytes: t.releasedBytes } : {}),
          tdNum(mib(t.rssBeforeBytes)),
          tdNum(mib(t.rssAfterBytes)),
          tdNum(num(t.durationMs) ? `${t.durationMs.toFixed(1)} ms` : 'n/a'),
        ]),
        'trims',
      ) +
      '</section>'
    : '';

  const envRows = Object.entries(env).map(([k, x]) => [
    `<td><code>${esc(k)}</code></td>`,
    `<td><code>${esc(String(x))}</code></td>`,
  ]);
  const envHtml =
    '<section id="environment"><h2>Environment and tunables</h2>' +
    (envRows.length ? table(['name', 'value'], envRows, 'environment') : '<p>Not recorded.</p>') +
    '</section>';

  const hash = createHash('sha256').update(script).digest('base64');
  const title = `fragstat report${cmd ? `: ${cmd}` : ''}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-${hash}'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title.length > 120 ? `${title.slice(0, 117)}...` : title)}</title>
<style>${style}</style>
</head>
<body>
<main>
<header><h1>fragstat report</h1>
<dl class="meta">${meta.map(([k, x]) => `<dt>${esc(k)}</dt><dd${k === 'command' ? ' id="command"' : ''}>${k === 'command' ? `<code>${esc(x)}</code>` : esc(x)}</dd>`).join('')}</dl>
</header>
${verdictHtml}
<section id="charts"><h2>Memory over time</h2>
${charts.length ? charts.join('\n') : '<p>No samples.</p>'}
${breakdownNote ? `<p class="note">${esc(breakdownNote)}</p>` : ''}
${trims.length ? '<p class="note">Dashed vertical lines mark trims.</p>' : ''}
</section>
${doctorHtml}
<section id="figures"><h2>Figures over the run</h2>
${figureRows.length ? table(['figure', 'first', 'last', 'min', 'max'], figureRows, 'figures') : '<p>No samples.</p>'}
${breakdownTable}
</section>
${trimsHtml}
${envHtml}
<p class="note">Written by fragstat. Sizes in MiB (1 MiB = 1,048,576 bytes). This file loads nothing from the network.</p>
</main>
<div id="tip"></div>
<script>${script}</script>
</body>
</html>
`;
}
