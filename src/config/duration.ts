const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;

/**
 * A duration is a string with a unit ("250ms", "2s", "1.5m", "1h") or a
 * non-negative integer of milliseconds. Returns milliseconds, or an error text.
 */
export function parseDuration(value: unknown): number | { error: string } {
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) return { error: `expected whole milliseconds, got ${value}` };
    if (value < 0) return { error: `must not be negative, got ${value}` };
    return value;
  }
  if (typeof value !== 'string') {
    return { error: `expected a duration such as "250ms" or "2s", got ${describe(value)}` };
  }
  const text = value.trim();
  const m = DURATION_RE.exec(text);
  if (!m) {
    // The two near misses get their own sentence rather than the general one.
    if (text.startsWith('-') && DURATION_RE.test(text.slice(1).trim()))
      return { error: `must not be negative, got ${JSON.stringify(value)}` };
    const lower = text.toLowerCase();
    if (lower !== text && DURATION_RE.test(lower))
      return {
        error: `units are lower case (ms, s, m, h): write ${JSON.stringify(lower)}, got ${JSON.stringify(value)}`,
      };
    return {
      error: `expected a duration with a unit (ms, s, m, h) such as "250ms" or "2s", got ${JSON.stringify(value)}`,
    };
  }
  return Math.round(Number(m[1]) * (UNIT_MS[m[2] as string] as number));
}

export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return 'an array';
  if (value === null || value === undefined) return 'nothing';
  if (typeof value === 'object') return 'a table';
  return String(value);
}

/** Milliseconds as a file would write them: the largest of h, m, s, ms that divides them ("90s", "250ms"). */
export function durationText(ms: number): string {
  for (const [unit, size] of [
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
