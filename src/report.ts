// The HTML report: one self-contained file (inline CSS and SVG, a few lines of script for
// tooltips, nothing fetched) that shows where a process's memory went over a run. Pure: it
// formats what it is given and reads nothing itself, so it renders the same from a live run, a
// recording or a test's made-up input.
import { createHash } from 'node:crypto';
import { esc, maxOf, reduceToColumns, tickDecimals, ticks } from './chart';

/** A sample as the monitor writes it (a Snapshot), reduced to what the report reads. */
export interface ReportSample {
  timestamp: number;
  rssBytes: number | null;
  allocatedBytes?: number | null;
  freeBytes?: number | null;
  heapBytes?: number | null;
  /** Free memory the allocator holds in RAM, where the sample has it. */
  residentFreeBytes?: number | null;
  /** V8's resident heap (total_physical_size), where the sample has it. */
  v8HeapBytes?: number | null;
  ratios?: { fragmentation?: number | null } | null;
}

/** The names of the breakdown's parts, in stacking order (bottom first). */
export const breakdownParts = [
  'v8Heap',
  'mallocLive',
  'mallocFreeResident',
  'allocatorOverhead',
  'code',
  'stacks',
  'other',
] as const;
export type BreakdownPart = (typeof breakdownParts)[number];

/** RSS split into parts that sum to it (fragstat's breakdown()). */
export interface ReportBreakdown {
  timestamp: number;
  rssBytes: number;
  parts: Record<BreakdownPart, number>;
  /** Parts that are estimates under this allocator. */
  partial?: string[];
}

export interface ReportTrim {
  timestamp: number;
  releasedBytes: number | null;
  rssBeforeBytes?: number | null;
  rssAfterBytes?: number | null;
  durationMs?: number | null;
}

export interface ReportVerdict {
  kind: string;
  title: string;
  advice: string;
  /** low, medium or high (verdict()'s confidence); absent in older recordings. */
  confidence?: string;
  /** How much longer to sample for a firmer verdict, ms, or null. */
  waitMs?: number | null;
  /** The evidence in sentences, with units. */
  because?: string[];
  evidence: Record<string, number>;
}

export interface ReportFinding {
  id: string;
  severity: string;
  title: string;
  advice: string;
  numbers: Record<string, number>;
}

export interface ReportInput {
  /** The command that ran, as argv. */
  command?: string[] | null;
  pid?: number | null;
  allocator?: string | null;
  samples: ReportSample[];
  breakdowns?: ReportBreakdown[];
  trims?: ReportTrim[];
  /** The verdict, or why there is none. */
  verdict?: ReportVerdict | { unavailable: string } | null;
  findings?: ReportFinding[] | null;
  /** Where the findings come from, in words (shown under them). */
  findingsNote?: string | null;
  /** Name/value pairs: allocator version, Node version, tunables in the environment. */
  environment?: Record<string, string> | null;
  /** How the process stands: "exited with code 0", "running (report taken on demand)", ... */
  status?: string | null;
  /** When the report was written, ms since the epoch. */
  generatedAt: number;
}

const MiB = 1024 * 1024;
const W = 960;
const PLOT = { left: 70, right: 200, top: 34, bottom: 40 };
const plotWidth = W - PLOT.left - PLOT.right;
/** Hover columns per chart: each shows the sample nearest its middle. */
const TIP_COLUMNS = 160;

const partStyle: Record<BreakdownPart, { label: string; color: string }> = {
  v8Heap: { label: 'V8 heap', color: '#4e79a7' },
  mallocLive: { label: 'malloc live', color: '#59a14f' },
  mallocFreeResident: { label: 'malloc free (resident)', color: '#e15759' },
  allocatorOverhead: { label: 'allocator overhead', color: '#f28e2b' },
  code: { label: 'code and mapped files', color: '#bab0ac' },
  stacks: { label: 'thread stacks', color: '#9c755f' },
  other: { label: 'other (unattributed)', color: '#d4a6c8' },
};

/** A finite number. */
export const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const mib = (b: number | null | undefined, digits = 1) =>
  num(b) ? `${(b / MiB).toFixed(digits)} MiB` : 'n/a';

/** 95 s -> "1m 35s"; 3 h -> "3h 0m". */
export function formatDuration(ms: number): string {
  if (!num(ms) || ms < 0) return 'n/a';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

/** `s` as one POSIX shell word, for showing a command line. */
function shellWord(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** An evidence or finding figure for people: bytes in MiB, rates per hour, ratios as such. */
export function formatFigure(key: string, value: number): string {
  if (!num(value)) return String(value);
  if (/BytesPerHour$/.test(key)) return `${(value / MiB).toFixed(1)} MiB/h`;
  if (/BytesPerSecond$/.test(key)) return `${(value / MiB).toFixed(3)} MiB/s`;
  if (/Bytes$/.test(key)) return `${(value / MiB).toFixed(1)} MiB`;
  if (/Ms$/.test(key)) return formatDuration(value);
  if (Number.isInteger(value)) return String(value);
  return value.toFixed(3);
}

interface TimeAxis {
  t0: number;
  t1: number;
  unit: string;
  div: number;
}

function timeAxis(t0: number, t1: number): TimeAxis {
  const span = Math.max(0, t1 - t0);
  const [unit, div] =
    span <= 180_000 ? ['s', 1000] : span <= 180 * 60_000 ? ['min', 60_000] : ['h', 3_600_000];
  return { t0, t1: Math.max(t1, t0 + 1), unit, div };
}

interface LineSeries {
  label: string;
  color: string;
  values: ArrayLike<number | null | undefined>;
  dash?: boolean;
  width?: number;
}

interface AreaSeries {
  label: string;
  color: string;
  times: ArrayLike<number>;
  values: ArrayLike<number>;
}

interface ChartOptions {
  id: string;
  title: string;
  height: number;
  axis: TimeAxis;
  times: ArrayLike<number>;
  lines: LineSeries[];
  areas?: AreaSeries[];
  /** Values in bytes (axis in MiB) or as a share (axis in %). */
  unit: 'MiB' | '%';
  trims: ReportTrim[];
  /** Text of the hover tooltip for the sample at index i. */
  tip: (i: number) => string;
}

function chart(o: ChartOptions): string {
  const H = o.height;
  const bottom = H - PLOT.bottom;
  const scale = o.unit === 'MiB' ? MiB : 0.01;
  const areas = o.areas ?? [];
  // Stacked areas: the mean of each part per column, stacked; their top is the column's total.
  const areaColumns = areas.map((a) => reduceToColumns(a.times, a.values, o.axis.t0, o.axis.t1, plotWidth));
  const stackTop = new Map<number, number>();
  for (const cols of areaColumns)
    for (const c of cols) stackTop.set(c.column, (stackTop.get(c.column) ?? 0) + c.mean);
  let max = maxOf([...stackTop.values()]);
  const lineColumns = o.lines.map((l) => reduceToColumns(o.times, l.values, o.axis.t0, o.axis.t1, plotWidth));
  for (const cols of lineColumns) for (const c of cols) if (c.max > max) max = c.max;
  const yt = ticks(o.unit === '%' ? Math.max(10, max / scale) : Math.max(1, max / scale));
  const yMax = yt[yt.length - 1] * scale;
  const xt = ticks((o.axis.t1 - o.axis.t0) / o.axis.div, 8);
  const xMax = xt[xt.length - 1] * o.axis.div;
  const xOfTime = (t: number) => PLOT.left + ((t - o.axis.t0) / xMax) * plotWidth;
  // Columns split [t0, t1]; the axis may run a little past t1, to a round tick.
  const colScale = (o.axis.t1 - o.axis.t0) / xMax;
  const cx = (c: number) => PLOT.left + (c + 0.5) * colScale;
  const y = (v: number) => bottom - (v / yMax) * (bottom - PLOT.top);
  const f = (v: number) => v.toFixed(1);

  const out: string[] = [
    `<svg id="${o.id}" class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(o.title)}">`,
    `<text x="${PLOT.left}" y="20" class="chart-title">${esc(o.title)}</text>`,
  ];
  const yd = tickDecimals(yt);
  for (const v of yt) {
    out.push(
      `<line x1="${PLOT.left}" x2="${W - PLOT.right}" y1="${f(y(v * scale))}" y2="${f(y(v * scale))}" class="grid"/>`,
      `<text x="${PLOT.left - 6}" y="${f(y(v * scale) + 4)}" text-anchor="end">${v.toFixed(yd)}</text>`,
    );
  }
  const xd = tickDecimals(xt);
  for (const v of xt) {
    out.push(
      `<text x="${f(xOfTime(o.axis.t0 + v * o.axis.div))}" y="${bottom + 16}" text-anchor="middle">${v.toFixed(xd)}</text>`,
    );
  }
  out.push(
    `<text x="${PLOT.left + plotWidth / 2}" y="${H - 6}" text-anchor="middle" class="axis-label">time (${o.axis.unit})</text>`,
    `<text x="16" y="${(PLOT.top + bottom) / 2}" text-anchor="middle" class="axis-label" transform="rotate(-90 16 ${(PLOT.top + bottom) / 2})">${o.unit}</text>`,
  );

  // Areas: each part's band between the running total below it and that total plus the part.
  const base = new Map<number, number>();
  areas.forEach((a, k) => {
    const cols = areaColumns[k];
    if (cols.length === 0) return;
    const band = cols.map((c) => {
      const lo = base.get(c.column) ?? 0;
      base.set(c.column, lo + c.mean);
      return { x: cx(c.column), lo, hi: lo + c.mean };
    });
    // A single column still gets a visible band, two pixels wide.
    if (band.length === 1) band.unshift({ ...band[0], x: band[0].x - 2 });
    const upper = band.map((p) => `${f(p.x)},${f(y(p.hi))}`);
    const lower = band.map((p) => `${f(p.x)},${f(y(p.lo))}`).reverse();
    out.push(
      `<path class="area" data-series="${esc(a.label)}" fill="${a.color}" d="M${upper.join('L')}L${lower.join('L')}Z"><title>${esc(a.label)}</title></path>`,
    );
  });

  // Lines: per column, the extremes in the order they came, so spikes survive any length.
  o.lines.forEach((l, k) => {
    const cols = lineColumns[k];
    if (cols.length === 0) return;
    const pts: string[] = [];
    for (const c of cols) {
      const x = f(cx(c.column));
      if (c.min === c.max) pts.push(`${x},${f(y(c.min))}`);
      else if (c.minFirst) pts.push(`${x},${f(y(c.min))}`, `${x},${f(y(c.max))}`);
      else pts.push(`${x},${f(y(c.max))}`, `${x},${f(y(c.min))}`);
    }
    out.push(
      `<polyline class="line" data-series="${esc(l.label)}" fill="none" stroke="${l.color}" stroke-width="${l.width ?? 2}"${l.dash ? ' stroke-dasharray="6 3"' : ''} points="${pts.join(' ')}"><title>${esc(l.label)}</title></polyline>`,
    );
  });

  for (const t of o.trims) {
    if (!num(t.timestamp) || t.timestamp < o.axis.t0 || t.timestamp > o.axis.t1) continue;
    const x = f(xOfTime(t.timestamp));
    const label = `trim: ${num(t.releasedBytes) ? `released ${mib(t.releasedBytes)}` : 'released n/a'}`;
    out.push(
      `<line class="trim" x1="${x}" x2="${x}" y1="${PLOT.top}" y2="${bottom}" stroke="#222" stroke-dasharray="3 3"><title>${esc(label)}</title></line>`,
      `<text class="trim-label" x="${x}" y="${PLOT.top - 3}" text-anchor="middle">trim</text>`,
    );
  }

  out.push(
    `<line x1="${PLOT.left}" x2="${PLOT.left}" y1="${PLOT.top}" y2="${bottom}" class="axis"/>`,
    `<line x1="${PLOT.left}" x2="${W - PLOT.right}" y1="${bottom}" y2="${bottom}" class="axis"/>`,
  );

  // Legend: lines first, then areas top part first (the order they appear in the stack).
  const legend = [
    ...o.lines.map((l) => ({ label: l.label, color: l.color, kind: 'line', dash: l.dash })),
    ...[...areas].reverse().map((a) => ({ label: a.label, color: a.color, kind: 'area', dash: false })),
  ];
  legend.forEach((e, i) => {
    const ly = PLOT.top + 8 + i * 18;
    const lx = W - PLOT.right + 14;
    out.push(
      e.kind === 'line'
        ? `<line x1="${lx}" x2="${lx + 20}" y1="${ly}" y2="${ly}" stroke="${e.color}" stroke-width="3"${e.dash ? ' stroke-dasharray="6 3"' : ''}/>`
        : `<rect x="${lx}" y="${ly - 6}" width="20" height="12" fill="${e.color}"/>`,
      `<text x="${lx + 26}" y="${ly + 4}">${esc(e.label)}</text>`,
    );
  });

  // Hover targets: a few columns, each naming the sample nearest its middle.
  const n = o.times.length;
  if (n > 0) {
    const cols = Math.min(TIP_COLUMNS, n);
    const wCol = plotWidth / cols;
    const span = o.axis.t1 - o.axis.t0;
    let j = 0;
    for (let c = 0; c < cols; c++) {
      const mid = o.axis.t0 + ((c + 0.5) / cols) * span;
      while (j + 1 < n && Math.abs(o.times[j + 1] - mid) <= Math.abs(o.times[j] - mid)) j++;
      const x0 = PLOT.left + (c / cols) * plotWidth * colScale;
      out.push(
        `<rect class="hover" x="${f(x0)}" y="${PLOT.top}" width="${f(wCol * colScale)}" height="${bottom - PLOT.top}" data-tip="${esc(o.tip(j))}"/>`,
      );
    }
  }
  out.push('</svg>');
  return out.join('\n');
}

const style = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;margin:0;background:#f6f6f4}
main{max-width:1000px;margin:0 auto;padding:20px 24px 40px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:12px 16px;margin:14px 0}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:8px 0 0}
dl.meta dt{color:#666}dl.meta dd{margin:0;overflow-wrap:anywhere}
code,pre{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f3f3f3;padding:6px 8px;border-radius:4px;margin:6px 0}
table{border-collapse:collapse;margin:6px 0}th,td{padding:3px 12px 3px 0;text-align:left;vertical-align:top}
th{color:#555;font-weight:600;border-bottom:1px solid #ddd}td:first-child{white-space:nowrap}td.n{text-align:right;font-variant-numeric:tabular-nums}
.verdict{border-left:6px solid #888}.verdict h3{margin:2px 0 6px;font-size:17px}
.k-js-heap-growth,.k-native-growth{border-left-color:#d62728}.k-fragmentation{border-left-color:#ff7f0e}
.k-stable{border-left-color:#2ca02c}.k-insufficient-evidence,.k-unavailable{border-left-color:#999}
.badge{display:inline-block;font-size:12px;padding:0 7px;border-radius:9px;background:#eee;margin-right:6px}
.sev-critical{background:#d62728;color:#fff}.sev-warn{background:#ff7f0e;color:#fff}.sev-info{background:#1f77b4;color:#fff}
.finding{margin:10px 0}.note{color:#666;font-size:13px}
svg.chart{width:100%;height:auto;display:block;font:12px system-ui,sans-serif;background:#fff}
svg .grid{stroke:#ececec}svg .axis{stroke:#444}svg .chart-title{font-size:14px;font-weight:600}
svg .axis-label{fill:#555}svg .area{opacity:.9}svg .trim-label{font-size:10px;fill:#222}
svg rect.hover{fill:transparent}svg rect.hover:hover{fill:rgba(0,0,0,.07)}
#tip{position:fixed;display:none;pointer-events:none;background:#222;color:#fff;padding:6px 8px;border-radius:4px;font:12px/1.4 ui-monospace,Menlo,Consolas,monospace;white-space:pre;z-index:9}
`;

// Shows the hovered column's data-tip; text only (textContent), and nothing can throw out of it.
const script =
  `(function(){try{var tip=document.getElementById('tip');if(!tip)return;` +
  `document.addEventListener('mousemove',function(e){try{var t=e.target,s=t&&t.getAttribute?t.getAttribute('data-tip'):null;` +
  `if(!s){tip.style.display='none';return;}tip.textContent=s;tip.style.display='block';` +
  `var x=e.clientX+14,y=e.clientY+14;if(x+tip.offsetWidth>innerWidth-4)x=e.clientX-tip.offsetWidth-14;` +
  `if(y+tip.offsetHeight>innerHeight-4)y=e.clientY-tip.offsetHeight-14;tip.style.left=Math.max(0,x)+'px';tip.style.top=Math.max(0,y)+'px';` +
  `}catch(_){}});}catch(_){}})();`;

function table(head: string[], rows: string[][], cls = ''): string {
  return (
    `<table${cls ? ` class="${cls}"` : ''}><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>` +
    rows.map((r) => `<tr>${r.join('')}</tr>`).join('') +
    '</tbody></table>'
  );
}
const td = (text: string) => `<td>${esc(text)}</td>`;
const tdNum = (text: string, attr: Record<string, number | string> = {}) =>
  `<td class="n"${Object.entries(attr)
    .map(([k, v]) => ` data-${k}="${esc(String(v))}"`)
    .join('')}>${esc(text)}</td>`;

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
