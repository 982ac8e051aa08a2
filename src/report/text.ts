// Figures for people in the report: MiB, durations, evidence figures, a command line, and
// each breakdown part's label and colour.
import type { BreakdownPart } from './input';

export const MiB = 1024 * 1024;
export const partStyle: Record<BreakdownPart, { label: string; color: string }> = {
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
export const mib = (b: number | null | undefined, digits = 1) =>
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
export function shellWord(s: string): string {
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
