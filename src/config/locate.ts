/**
 * Where a dotted key path ("services.web.health.fall") is written in a TOML
 * file, for tools (`check --json`) that want a line and column. A light scan of
 * headers and `key =` lines, not a parser: a path inside an inline table or an
 * array resolves to the key that holds it, and a key that is not in the file
 * (a default, a missing key) to the nearest table above it that is.
 */

export interface Place {
  readonly line: number;
  readonly column: number;
}

/** Dotted key segments, bare or quoted: `a."b.c".d` -> ["a", "b.c", "d"]. */
function segments(text: string): string[] | null {
  const out: string[] = [];
  const re = /\s*(?:([A-Za-z0-9_-]+)|"((?:[^"\\]|\\.)*)"|'([^']*)')\s*(\.|$)/y;
  let i = 0;
  while (i < text.length) {
    re.lastIndex = i;
    const m = re.exec(text);
    if (!m) return null;
    out.push(m[1] ?? (m[2] !== undefined ? (JSON.parse(`"${m[2]}"`) as string) : (m[3] as string)));
    i = re.lastIndex;
    if (m[4] === '') break;
  }
  return out;
}

/** Every table header and key of the file, first occurrence, by its full dotted path. */
export function keyPlaces(text: string): Map<string, Place> {
  const places = new Map<string, Place>();
  let table: string[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    const header = /^(\s*)\[\[?([^\]]*)\]\]?\s*(#.*)?$/.exec(line);
    if (header) {
      const path = segments(header[2] as string);
      if (!path) continue;
      table = path;
      const k = path.join('.');
      if (!places.has(k)) places.set(k, { line: i + 1, column: (header[1] as string).length + 1 });
      continue;
    }
    const kv = /^(\s*)([A-Za-z0-9_\-."' ]+?)\s*=/.exec(line);
    if (!kv) continue;
    const keys = segments(kv[2] as string);
    if (!keys) continue;
    const k = [...table, ...keys].join('.');
    if (!places.has(k)) places.set(k, { line: i + 1, column: (kv[1] as string).length + 1 });
  }
  return places;
}

/** The place of `path` ("services.web.backends[1].address"), or of the nearest enclosing key written. */
export function locate(places: ReadonlyMap<string, Place>, path: string): Place | null {
  const parts = path.replace(/\[\d+\]/g, '').split('.');
  for (let n = parts.length; n > 0; n--) {
    const hit = places.get(parts.slice(0, n).join('.'));
    if (hit) return hit;
  }
  return null;
}
