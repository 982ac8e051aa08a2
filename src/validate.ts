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
