// A dependency-free SVG line chart: enough for memory over time, one line per series.
import { esc, maxOf, tickDecimals, ticks } from '../report/chart';

export { ticks };

export interface Series {
  label: string;
  points: { x: number; y: number }[];
}

const palette = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

/** A moment to mark on the time axis (a trim), with the text of its tooltip. */
export interface Marker {
  x: number;
  label: string;
}

export function renderSvg(
  series: Series[],
  o: { title: string; xLabel: string; yLabel: string; markers?: Marker[] },
): string {
  // The legend sits right of the plot: make room for the longest label so none is cut off. 8 px
  // a character at 12 px sans-serif covers lower case (about 6.5 px) and most capitals.
  const longest = Math.max(0, maxOf(series.map((s) => s.label.length)));
  const m = { left: 80, right: Math.max(220, 56 + Math.ceil(longest * 8)), top: 50, bottom: 60 };
  const W = 740 + m.right;
  const H = 520;
  const all = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const markers = (o.markers ?? []).filter((k) => Number.isFinite(k.x) && k.x >= 0);
  // A single sample (or a flat line) still gets a readable axis of at least 1.
  const xt = ticks(Math.max(1, maxOf([...all.map((p) => p.x), ...markers.map((k) => k.x)])));
  const yt = ticks(Math.max(1, maxOf(all.map((p) => p.y))));
  const xMax = xt[xt.length - 1];
  const yMax = yt[yt.length - 1];
  const px = (x: number) => m.left + (x / xMax) * (W - m.left - m.right);
  const py = (y: number) => H - m.bottom - (y / yMax) * (H - m.top - m.bottom);
  const xd = tickDecimals(xt);
  const yd = tickDecimals(yt);

  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2 - m.right / 2 + m.left / 2}" y="28" text-anchor="middle" font-size="16">${esc(o.title)}</text>`,
  ];
  for (const v of yt) {
    parts.push(
      `<line x1="${m.left}" x2="${W - m.right}" y1="${py(v)}" y2="${py(v)}" stroke="#e5e5e5"/>`,
      `<text x="${m.left - 8}" y="${py(v) + 4}" text-anchor="end">${v.toFixed(yd)}</text>`,
    );
  }
  for (const v of xt) {
    parts.push(`<text x="${px(v)}" y="${H - m.bottom + 18}" text-anchor="middle">${v.toFixed(xd)}</text>`);
  }
  parts.push(
    `<line x1="${m.left}" x2="${m.left}" y1="${m.top}" y2="${H - m.bottom}" stroke="#333"/>`,
    `<line x1="${m.left}" x2="${W - m.right}" y1="${H - m.bottom}" y2="${H - m.bottom}" stroke="#333"/>`,
    `<text x="${(m.left + W - m.right) / 2}" y="${H - 18}" text-anchor="middle">${esc(o.xLabel)}</text>`,
    `<text x="20" y="${(m.top + H - m.bottom) / 2}" text-anchor="middle" transform="rotate(-90 20 ${(m.top + H - m.bottom) / 2})">${esc(o.yLabel)}</text>`,
  );
  for (const k of markers) {
    parts.push(
      `<line class="marker" x1="${px(k.x).toFixed(1)}" x2="${px(k.x).toFixed(1)}" y1="${m.top}" y2="${H - m.bottom}" stroke="#555" stroke-dasharray="4 3"><title>${esc(k.label)}</title></line>`,
    );
  }
  if (markers.length) {
    parts.push(
      `<line x1="${W - m.right + 16}" x2="${W - m.right + 40}" y1="${m.top + 10 + series.length * 20}" y2="${m.top + 10 + series.length * 20}" stroke="#555" stroke-dasharray="4 3"/>`,
      `<text x="${W - m.right + 46}" y="${m.top + 14 + series.length * 20}">trim</text>`,
    );
  }
  series.forEach((s, i) => {
    const color = palette[i % palette.length];
    const pts = s.points.map((p) => `${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(' ');
    parts.push(
      `<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts}"><title>${esc(s.label)}</title></polyline>`,
      `<line x1="${W - m.right + 16}" x2="${W - m.right + 40}" y1="${m.top + 10 + i * 20}" y2="${m.top + 10 + i * 20}" stroke="${color}" stroke-width="3"/>`,
      `<text x="${W - m.right + 46}" y="${m.top + 14 + i * 20}">${esc(s.label)}</text>`,
    );
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
