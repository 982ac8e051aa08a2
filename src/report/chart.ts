// What the SVG charts share (fragstat plot's line chart and the HTML report): escaping, round
// axis ticks and a bounded reduction of long series to what a pixel column can show.

/** `s` safe as HTML/SVG text and as a quoted attribute value. */
export const esc = (s: string): string =>
  s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');

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

/** As many decimals as a tick step needs: steps are 1, 2 or 5 x 10^n, so 0.5 -> 1, 0.05 -> 2. */
export function tickDecimals(t: number[]): number {
  const step = t.length > 1 ? t[1] - t[0] : 1;
  return step >= 1 ? 0 : Math.ceil(-Math.log10(step) - 1e-9);
}

/** Largest finite value of `values` (0 when there is none), without spreading the array. */
export function maxOf(values: ArrayLike<number | null | undefined>): number {
  let max = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v === 'number' && Number.isFinite(v) && v > max) max = v;
  }
  return max;
}

/** One pixel column of a series: the extremes (in the order they occurred) and the mean. */
export interface Column {
  column: number;
  min: number;
  max: number;
  /** Whether the minimum came before the maximum in the column. */
  minFirst: boolean;
  mean: number;
}

/**
 * Reduces a series of (time, value) to at most `columns` columns over [t0, t1]: the min and max
 * of each keep every peak and dip visible, the mean serves stacked areas. Null and non-finite
 * values are skipped; a column with none is absent. O(n), whatever n.
 */
export function reduceToColumns(
  times: ArrayLike<number>,
  values: ArrayLike<number | null | undefined>,
  t0: number,
  t1: number,
  columns: number,
): Column[] {
  const span = t1 - t0;
  const out = new Map<
    number,
    { min: number; max: number; minAt: number; maxAt: number; sum: number; n: number }
  >();
  for (let i = 0; i < times.length; i++) {
    const v = values[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) continue;
    const c =
      span > 0 ? Math.min(columns - 1, Math.max(0, Math.floor(((times[i] - t0) / span) * columns))) : 0;
    const cur = out.get(c);
    if (!cur) out.set(c, { min: v, max: v, minAt: i, maxAt: i, sum: v, n: 1 });
    else {
      if (v < cur.min) {
        cur.min = v;
        cur.minAt = i;
      }
      if (v > cur.max) {
        cur.max = v;
        cur.maxAt = i;
      }
      cur.sum += v;
      cur.n++;
    }
  }
  return [...out.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([column, c]) => ({
      column,
      min: c.min,
      max: c.max,
      minFirst: c.minAt <= c.maxAt,
      mean: c.sum / c.n,
    }));
}
