import { describe } from './duration.js';

/**
 * A byte rate: "10MiB", "500KB", "1.5MiB/s", or a plain integer of bytes a
 * second. Decimal units (KB, MB, GB: 1000) and binary ones (KiB, MiB, GiB:
 * 1024) are both spelled out, since a bare "m" means 1024² to nginx and a
 * lower-case "mb" reads as megabits to most people: those get an error that
 * says what to write, never a guess. 0 turns a limit off.
 */

/** Below this a single 64 KiB read would hold its side still for over a minute. */
export const MIN_RATE = 1024;
/** 16 GiB a second, above a 100 Gbit/s link: a larger rate is a typo, not a limit. */
export const MAX_RATE = 16 * 1024 ** 3;

const UNITS: Readonly<Record<string, number>> = {
  B: 1,
  KB: 1000,
  MB: 1000 ** 2,
  GB: 1000 ** 3,
  TB: 1000 ** 4,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
  TiB: 1024 ** 4,
};
const UNITS_TEXT = 'B, KB, MB, GB (1000) or KiB, MiB, GiB (1024)';
/** A number, an optional unit, an optional "/s". */
const RATE_RE = /^(\d+(?:\.\d+)?)\s*([A-Za-z]*)(\/s)?$/;

/** The JSON Schema pattern of the string form (the validator has the last word). */
export const RATE_PATTERN = '^[0-9]+(\\.[0-9]+)?\\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?(/s)?$';

/** What a rate's number of bytes a second shows as: the largest binary unit that divides it. */
export function rateText(bytes: number): string {
  for (const u of ['GiB', 'MiB', 'KiB'] as const) {
    const size = UNITS[u] as number;
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${u}`;
  }
  return String(bytes);
}

/** Bytes a second (0: off), or the error text. */
export function parseRate(value: unknown): number | { error: string } {
  let bytes: number;
  if (typeof value === 'number') {
    if (!Number.isInteger(value))
      return { error: `expected whole bytes a second or a rate such as "10MiB", got ${value}` };
    bytes = value;
  } else if (typeof value === 'string') {
    const text = value.trim();
    if (text.startsWith('-'))
      return { error: `must not be negative, got ${JSON.stringify(value)}` };
    const m = RATE_RE.exec(text);
    if (!m)
      return {
        error: `expected a rate such as "10MiB", "500KB" or bytes a second, got ${JSON.stringify(value)}`,
      };
    const unit = m[2] === '' ? 'B' : (m[2] as string);
    const size = UNITS[unit];
    if (size === undefined) {
      const hint = unitHint(unit);
      return { error: `unknown unit "${unit}" (${hint}), got ${JSON.stringify(value)}` };
    }
    bytes = Math.round(Number(m[1]) * size);
  } else {
    return { error: `expected a rate such as "10MiB" or bytes a second, got ${describe(value)}` };
  }
  if (bytes < 0) return { error: `must not be negative, got ${JSON.stringify(value)}` };
  if (bytes === 0) return 0;
  if (bytes < MIN_RATE)
    return {
      error: `at least ${MIN_RATE} bytes a second (1KiB) or 0 for no limit, got ${JSON.stringify(value)}`,
    };
  if (bytes > MAX_RATE)
    return {
      error: `at most 16GiB a second (faster than a 100 Gbit/s link), got ${JSON.stringify(value)}`,
    };
  return bytes;
}

function unitHint(unit: string): string {
  const lower = unit.toLowerCase();
  if (['k', 'm', 'g'].includes(lower))
    return `a bare "${unit}" is ambiguous: write "${unit.toUpperCase()}iB" (1024) or "${unit.toUpperCase()}B" (1000)`;
  if (lower.endsWith('bps') || lower.endsWith('bit') || (lower.endsWith('b') && unit.endsWith('b')))
    return `rates are in bytes, not bits; units are ${UNITS_TEXT}`;
  return `units are ${UNITS_TEXT}`;
}
