const UNIT_MS: Readonly<Record<string, number>> = {
  d: 86_400_000,
  h: 3_600_000,
  m: 60_000,
  s: 1000,
  ms: 1,
};
/** The units in the order a compound duration writes them, largest first. */
const UNIT_ORDER = ['d', 'h', 'm', 's', 'ms'] as const;
/** One part of a duration: a number and its unit ("1m", "30s", "1.5h"). `ms` before `m`, so "5ms" is not "5m" then "s". */
const PART_RE = /(\d+(?:\.\d+)?)(ms|d|h|m|s)/y;
const UNITS_TEXT = 'd, h, m, s, ms';

/**
 * The milliseconds of "1m30s", "2d12h", "250ms" or "1.5m": one or more parts,
 * each a number and a unit, units from the largest down and each once (as Go's
 * time.ParseDuration and HAProxy's timeouts read them, with days added).
 * Returns the error text, or NaN when the text is not made of parts at all.
 */
function compound(text: string): number | string {
  if (text === '') return Number.NaN;
  let total = 0;
  let at = 0;
  let last = -1;
  PART_RE.lastIndex = 0;
  while (at < text.length) {
    PART_RE.lastIndex = at;
    const m = PART_RE.exec(text);
    if (!m) return Number.NaN;
    const unit = m[2] as (typeof UNIT_ORDER)[number];
    const rank = UNIT_ORDER.indexOf(unit);
    if (rank <= last)
      return `the parts of a duration go from the largest unit down, each once (${UNITS_TEXT}), as in "1h30m"`;
    last = rank;
    total += Number(m[1]) * (UNIT_MS[unit] as number);
    at = PART_RE.lastIndex;
  }
  return Math.round(total);
}

function isDuration(text: string): boolean {
  const r = compound(text);
  return typeof r === 'number' && !Number.isNaN(r);
}

/**
 * A duration is a string with units ("250ms", "2s", "1.5m", "1h", "1m30s",
 * "1d") or a non-negative integer of milliseconds. Returns milliseconds, or an
 * error text.
 */
export function parseDuration(value: unknown): number | { error: string } {
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) return { error: `expected whole milliseconds, got ${value}` };
    if (value < 0) return { error: `must not be negative, got ${value}` };
    return value;
  }
  if (typeof value !== 'string') {
    return {
      error: `expected a duration such as "250ms", "2s" or "1m30s", got ${describe(value)}`,
    };
  }
  const text = value.trim();
  const r = compound(text);
  if (typeof r === 'string') return { error: `${r}, got ${JSON.stringify(value)}` };
  if (!Number.isNaN(r)) return r;
  // The near misses get their own sentence rather than the general one.
  if (text.startsWith('-') && isDuration(text.slice(1).trim()))
    return { error: `must not be negative, got ${JSON.stringify(value)}` };
  const lower = text.toLowerCase();
  if (lower !== text && isDuration(lower))
    return {
      error: `units are lower case (${UNITS_TEXT}): write ${JSON.stringify(lower)}, got ${JSON.stringify(value)}`,
    };
  const squeezed = text.replace(/\s+/g, '');
  if (squeezed !== text && isDuration(squeezed))
    return {
      error: `write a duration without spaces: ${JSON.stringify(squeezed)}, got ${JSON.stringify(value)}`,
    };
  return {
    error: `expected a duration with a unit (${UNITS_TEXT}) such as "250ms", "2s" or "1m30s", got ${JSON.stringify(value)}`,
  };
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
