import { isAbsolute, resolve } from 'node:path';
import { type HostPort, parseHostPort } from './address.js';
import { describe, parseDuration } from './duration.js';
import { foreignKey, foreignValue } from './foreign.js';
import { MAX_TIMER_MS } from './limits.js';
import type { BooleanSpec, DurationSpec, EnumSpec, IntegerSpec } from './spec.js';

/**
 * The checks every config value goes through: types, ranges, known keys
 * (with the closest one suggested). Each reports into Problems and returns a
 * usable default, so one pass finds every problem in a file.
 */

export type Table = Record<string, unknown>;

export function isTable(v: unknown): v is Table {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/** Collects every problem so an operator fixes a file in one pass, not one error per run. */
export class Problems {
  readonly list: string[] = [];
  /** Unknown keys known one table up, by path: what checkKeys says of them instead of a guess. */
  private readonly misplaced = new Map<string, string>();
  constructor(private readonly source: string) {}
  add(path: string, message: string): void {
    this.list.push(`${this.source}: ${path}: ${message}`);
  }
  /** Says where the key at `path` belongs, should checkKeys find it unknown there. */
  belongsElsewhere(path: string, message: string): void {
    this.misplaced.set(path, message);
  }
  misplacedAt(path: string): string | undefined {
    return this.misplaced.get(path);
  }
}

function editDistance(a: string, b: string): number {
  const prev = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0] as number;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j] as number;
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      prev[j] = Math.min(up + 1, (prev[j - 1] as number) + 1, diag + cost);
      diag = up;
    }
  }
  return prev[b.length] as number;
}

export function closest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  const k = key.toLowerCase().replaceAll('-', '_');
  for (const cand of known) {
    const d = editDistance(k, cand);
    if (d < bestD) {
      bestD = d;
      best = cand;
    }
  }
  return bestD <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

export function checkKeys(t: Table, known: readonly string[], path: string, p: Problems): void {
  for (const key of Object.keys(t)) {
    if (known.includes(key)) continue;
    const near = closest(key, known);
    const where = path ? `${path}.${key}` : key;
    // HAProxy's or nginx's word (maxconn, inter, proxy_timeout) says what it means here.
    const foreign = foreignKey(key);
    p.add(
      where,
      p.misplacedAt(where) ??
        `unknown key${foreign ?? (near ? `; did you mean "${near}"?` : `; known keys: ${known.join(', ')}`)}`,
    );
  }
}

/** An optional sub-table with its keys checked: null when it is absent, `{}` when it is no table. */
export function knownTable(
  v: unknown,
  known: readonly string[],
  path: string,
  p: Problems,
): Table | null {
  if (v === undefined) return null;
  const t = table(v, path, p);
  checkKeys(t, known, path, p);
  return t;
}

/**
 * The parser of an optional sub-table of a service (`[services.NAME.stick]`,
 * `.tls`, `.discovery`...): absent is null; anything else goes through
 * knownTable (not a table, unknown keys: problems) and then to `read`.
 */
export function optionalTable<A extends unknown[], R>(
  known: readonly string[],
  read: (t: Table, path: string, p: Problems, ...rest: A) => R,
): (v: unknown, path: string, p: Problems, ...rest: A) => R | null {
  return (v, path, p, ...rest) => {
    const t = knownTable(v, known, path, p);
    return t === null ? null : read(t, path, p, ...rest);
  };
}

/**
 * A key naming a file, taken from `baseDir` (the config file's directory)
 * when relative; null, with the error, when it is no non-empty string.
 */
export function filePath(
  v: unknown,
  path: string,
  baseDir: string,
  what: string,
  p: Problems,
): string | null {
  if (typeof v !== 'string' || v === '') {
    p.add(path, `expected ${what}, got ${describe(v)}`);
    return null;
  }
  return isAbsolute(v) ? v : resolve(baseDir, v);
}

export function table(v: unknown, path: string, p: Problems): Table {
  if (v === undefined) return {};
  if (isTable(v)) return v;
  p.add(path, `expected a table, got ${describe(v)}`);
  return {};
}

const SHOWN_UNITS: readonly [string, number][] = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
];

/** 300000 -> "5m"; a value no unit divides shows its whole days and the exact ms: "24d (2147483647ms)". */
export function showMs(ms: number): string {
  for (const [unit, size] of SHOWN_UNITS) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  for (const [unit, size] of SHOWN_UNITS) {
    if (ms >= size) return `${Math.floor(ms / size)}${unit} (${ms}ms)`;
  }
  return `${ms}ms`;
}

/** A duration in milliseconds from `min` to `max` (both inclusive; max at most MAX_TIMER_MS). */
export function duration(
  v: unknown,
  path: string,
  dflt: number,
  p: Problems,
  min = 0,
  max = MAX_TIMER_MS,
): number {
  if (v === undefined) return dflt;
  const r = parseDuration(v);
  if (typeof r !== 'number') {
    p.add(path, r.error);
    return dflt;
  }
  // Not `r < min || r > max`: NaN (never produced, but cheap to exclude) fails both.
  if (!(r >= min && r <= max)) {
    p.add(path, `must be ${showMs(min)}-${showMs(max)}, got ${describe(v)}`);
    return dflt;
  }
  return r;
}

/** A whole number from `min` to `max`. Every count has an upper bound: Infinity and 1e300 are typos. */
export function integer(
  v: unknown,
  path: string,
  dflt: number,
  min: number,
  p: Problems,
  max: number,
): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    p.add(path, `expected a whole number, got ${describe(v)}`);
    return dflt;
  }
  if (v < min || v > max) {
    p.add(path, `must be ${min}-${max}, got ${v}`);
    return dflt;
  }
  return v;
}

export function boolean(v: unknown, path: string, dflt: boolean, p: Problems): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') {
    p.add(path, `expected true or false, got ${describe(v)}`);
    return dflt;
  }
  return v;
}

export function oneOf<T extends string>(
  v: unknown,
  path: string,
  dflt: T,
  allowed: readonly T[],
  p: Problems,
): T {
  if (v === undefined) return dflt;
  if (typeof v !== 'string' || !allowed.includes(v as T)) {
    const near = typeof v === 'string' ? closest(v, allowed) : undefined;
    const foreign = typeof v === 'string' ? foreignValue(path, v) : undefined;
    p.add(
      path,
      `expected one of ${allowed.join(' | ')}, got ${describe(v)}${foreign ?? (near ? `; did you mean "${near}"?` : '')}`,
    );
    return dflt;
  }
  return v as T;
}

export function hostPort(v: unknown, path: string, p: Problems, minPort = 1): HostPort | undefined {
  const r = parseHostPort(v, minPort);
  if ('error' in r) {
    p.add(path, r.error);
    return undefined;
  }
  return r;
}

/* The same checks, with the default and range read from a key's spec (config/spec.ts). */

export function durationOf(
  f: DurationSpec,
  v: unknown,
  path: string,
  p: Problems,
  dflt = f.default ?? 0,
): number {
  return duration(v, path, dflt, p, f.min, f.max);
}

export function integerOf(
  f: IntegerSpec,
  v: unknown,
  path: string,
  p: Problems,
  dflt = f.default ?? f.min,
): number {
  return integer(v, path, dflt, f.min, p, f.max);
}

export function booleanOf(f: BooleanSpec, v: unknown, path: string, p: Problems): boolean {
  return boolean(v, path, f.default ?? false, p);
}

export function oneOfSpec<T extends string>(
  f: EnumSpec<T> & { readonly default: T },
  v: unknown,
  path: string,
  p: Problems,
): T {
  return oneOf(v, path, f.default, f.values, p);
}
