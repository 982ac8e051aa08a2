// Argument checks shared by every public function: errors name the option, what was expected and
// what was received.

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `a string (${JSON.stringify(value)})`;
  return `${typeof value === 'object' ? 'an object' : typeof value} (${String(value)})`;
}

/** Throws a TypeError unless `value` is undefined or a plain object; returns it as an object. */
export function checkOptions(where: string, value: unknown): Record<string, unknown> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(`Expected an object or undefined for ${where} but received ${describe(value)}`);
  }
  return value as Record<string, unknown>;
}

/** Throws a TypeError for any own key of `value` not in `known`. */
export function checkKeys(where: string, value: object, known: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      throw new TypeError(`Unknown option ${JSON.stringify(key)} for ${where}; known: ${known.join(', ')}`);
    }
  }
}

export function checkBoolean(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean')
    throw new TypeError(`Expected a boolean for ${name} but received ${describe(value)}`);
  return value;
}

/** A number in [min, max] (an integer if `integer`); TypeError for a non-number, RangeError outside. */
export function checkNumber(
  name: string,
  value: unknown,
  fallback: number,
  min: number,
  max: number,
  integer = false,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value)) {
    throw new TypeError(`Expected a number for ${name} but received ${describe(value)}`);
  }
  if (value < min || value > max || (integer && !Number.isInteger(value))) {
    throw new RangeError(
      `Expected ${integer ? 'an integer' : 'a number'} from ${min} to ${max} for ${name} but received ${value}`,
    );
  }
  return value;
}

const snapshotNumbers = ['rssBytes', 'allocatedBytes', 'freeBytes', 'heapBytes', 'arenas'] as const;
const snapshotRatios = ['fragmentation', 'external', 'rss'] as const;

/**
 * Throws a TypeError naming the first field of `value` that a Snapshot cannot have: a missing or
 * non-numeric figure (each is a number or null), missing ratios, a detail without arenas.
 */
export function checkSnapshot(where: string, value: unknown): void {
  if (
    value === null ||
    typeof value !== 'object' ||
    typeof (value as { allocator?: unknown }).allocator !== 'string'
  ) {
    throw new TypeError(`Expected a Snapshot for ${where} but received ${describe(value)}`);
  }
  const s = value as Record<string, unknown>;
  const numberOrNull = (name: string, v: unknown) => {
    if (v !== null && typeof v !== 'number') {
      throw new TypeError(
        `Expected a Snapshot for ${where}: ${name} must be a number or null but received ${v === undefined ? 'undefined' : describe(v)}`,
      );
    }
  };
  for (const k of snapshotNumbers) numberOrNull(`snapshot.${k}`, s[k]);
  const ratios = s.ratios;
  if (ratios === null || typeof ratios !== 'object') {
    throw new TypeError(
      `Expected a Snapshot for ${where}: snapshot.ratios must be an object but received ${ratios === undefined ? 'undefined' : describe(ratios)}`,
    );
  }
  for (const k of snapshotRatios)
    numberOrNull(`snapshot.ratios.${k}`, (ratios as Record<string, unknown>)[k]);
  if (s.mayHaveWrapped !== undefined && typeof s.mayHaveWrapped !== 'boolean') {
    throw new TypeError(
      `Expected a Snapshot for ${where}: snapshot.mayHaveWrapped must be a boolean but received ${describe(s.mayHaveWrapped)}`,
    );
  }
  const d = s.detail;
  if (
    d !== undefined &&
    d !== null &&
    (typeof d !== 'object' || !Array.isArray((d as { arenas?: unknown }).arenas))
  ) {
    throw new TypeError(
      `Expected a Snapshot for ${where}: snapshot.detail must be null or an object with an arenas array but received ${describe(d)}`,
    );
  }
}
