// A dependency-free SVG line chart: enough for memory over time, one line per series.

export interface Series {
  label: string;
  points: { x: number; y: number }[];
}

const palette = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

const esc = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Round tick steps (1, 2, 5 x 10^n) covering [0, max] in about `count` steps. */
export function ticks(max: number, count = 5): number[] {
  if (!(max > 0) || !Number.isFinite(max)) return [0, 1];
  const raw = max / count;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = 0; v <= max + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  if (out[out.length - 1] < max) out.push(Number((out[out.length - 1] + step).toPrecision(12)));
  return out;
}

/** The largest of `xs` and `floor`; a loop, since Math.max(...xs) overflows the stack on long runs. */
function largest(floor: number, xs: Iterable<number>): number {
  let m = floor;
  for (const x of xs) if (x > m) m = x;
  return m;
}

export function renderSvg(series: Series[], o: { title: string; xLabel: string; yLabel: string }): string {
  // The legend sits right of the plot: make room for the longest label so none is cut off. 8 px
  // a character at 12 px sans-serif covers lower case (about 6.5 px) and most capitals.
  const longest = largest(
    0,
    series.map((s) => s.label.length),
  );
  const m = { left: 80, right: Math.max(220, 56 + Math.ceil(longest * 8)), top: 50, bottom: 60 };
  const W = 740 + m.right;
  const H = 520;
  const all = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  // A single sample (or a flat line) still gets a readable axis of at least 1.
  const xt = ticks(
    largest(
      1,
      all.map((p) => p.x),
    ),
  );
  const yt = ticks(
    largest(
      1,
      all.map((p) => p.y),
    ),
  );
  const xMax = xt[xt.length - 1];
  const yMax = yt[yt.length - 1];
  const px = (x: number) => m.left + (x / xMax) * (W - m.left - m.right);
  const py = (y: number) => H - m.bottom - (y / yMax) * (H - m.top - m.bottom);
  // As many decimals as the tick step needs: steps are 1, 2 or 5 x 10^n, so 0.5 -> 1, 0.05 -> 2.
  const decimals = (t: number[]) => {
    const step = t.length > 1 ? t[1] - t[0] : 1;
    return step >= 1 ? 0 : Math.ceil(-Math.log10(step) - 1e-9);
  };
  const xd = decimals(xt);
  const yd = decimals(yt);

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
