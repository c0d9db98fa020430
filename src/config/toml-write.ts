import { isTable, type Table } from './fields.js';

/**
 * Writes a plain object as TOML: the `toml` package only parses. Enough for
 * what config/effective.ts produces: strings, numbers, booleans, arrays (of
 * scalars or of tables, written inline) and nested tables.
 */

function key(k: string): string {
  return /^[A-Za-z0-9_-]+$/.test(k) ? k : quote(k);
}

/** JSON's escapes are TOML's, except that TOML also wants DEL escaped. */
function quote(s: string): string {
  return JSON.stringify(s).replace(/\x7f/g, '\\u007f');
}

function value(v: unknown): string {
  if (typeof v === 'string') return quote(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) {
    if (v.some(isTable)) return `[\n${v.map((x) => `  ${value(x)},\n`).join('')}]`;
    return `[${v.map(value).join(', ')}]`;
  }
  if (isTable(v)) {
    const parts = Object.entries(v).map(([k, x]) => `${key(k)} = ${value(x)}`);
    return parts.length > 0 ? `{ ${parts.join(', ')} }` : '{}';
  }
  throw new TypeError(`cannot write ${typeof v} as TOML`);
}

function section(t: Table, path: string[], out: string[]): void {
  const plain = Object.entries(t).filter(([, v]) => !isTable(v));
  const tables = Object.entries(t).filter(([, v]) => isTable(v)) as [string, Table][];
  // A table that holds only tables ([services]) needs no header of its own.
  if (path.length > 0 && (plain.length > 0 || tables.length === 0)) {
    if (out.length > 0) out.push('');
    out.push(`[${path.map(key).join('.')}]`);
  }
  for (const [k, v] of plain) out.push(`${key(k)} = ${value(v)}`);
  for (const [k, v] of tables) section(v, [...path, k], out);
}

export function toToml(doc: Table): string {
  const out: string[] = [];
  section(doc, [], out);
  return `${out.join('\n')}\n`;
}
