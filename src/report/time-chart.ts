// The report's time charts: stacked areas and lines over a time axis, as inline SVG with a
// hover column per slice of time.
import { esc, maxOf, reduceToColumns, tickDecimals, ticks } from './chart';
import type { ReportTrim } from './input';
import { mib, MiB, num } from './text';

export const W = 960;
export const PLOT = { left: 70, right: 200, top: 34, bottom: 40 };
export const plotWidth = W - PLOT.left - PLOT.right;
/** Hover columns per chart: each shows the sample nearest its middle. */
export const TIP_COLUMNS = 160;

export interface TimeAxis {
  t0: number;
  t1: number;
  unit: string;
  div: number;
}

export function timeAxis(t0: number, t1: number): TimeAxis {
  const span = Math.max(0, t1 - t0);
  const [unit, div] =
    span <= 180_000 ? ['s', 1000] : span <= 180 * 60_000 ? ['min', 60_000] : ['h', 3_600_000];
  return { t0, t1: Math.max(t1, t0 + 1), unit, div };
}

export interface LineSeries {
  label: string;
  color: string;
  values: ArrayLike<number | null | undefined>;
  dash?: boolean;
  width?: number;
}

export interface AreaSeries {
  label: string;
  color: string;
  times: ArrayLike<number>;
  values: ArrayLike<number>;
}

export interface ChartOptions {
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

export function chart(o: ChartOptions): string {
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
