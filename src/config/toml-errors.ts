/**
 * Turns a TOML parser error into a sentence an operator can act on. The `toml`
 * package reports a grammar dump ("Expected "#", ".", "\n" … but "s" found");
 * the line it points at says far more, so the sentence comes from that line.
 */

export interface TomlErrorPlace {
  /** 1-based, as the parser gives them. */
  readonly line: number;
  readonly column: number;
  /** The parser's own message, used only to tell a few cases apart. */
  readonly raw: string;
}

export interface Explained {
  readonly line: number;
  /** Where the caret goes (1-based): the start of the bad value when there is one. */
  readonly column: number;
  readonly reason: string;
}

const DURATION_LIKE = /^-?\d+(?:\.\d+)?\s*(?:ms|s|m|h|d)\b/i;
const HOST_PORT_LIKE = /^(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:.]+\]|[A-Za-z][\w.-]*):\d+/;
const BARE_WORD = /^[A-Za-z_][\w.-]*/;

/** The line without a trailing comment; quotes are respected well enough for one line. */
function withoutComment(line: string): string {
  const hash = unquoted(line).at.find((i) => line[i] === '#');
  return hash === undefined ? line : line.slice(0, hash);
}

/**
 * Where the characters of `s` outside "…" and '…' stand (the quote marks
 * left out), and whether every quote it opens is closed.
 */
function unquoted(s: string): { at: number[]; closed: boolean } {
  const at: number[] = [];
  let quote: string | null = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else at.push(i);
  }
  return { at, closed: quote === null };
}

/** `key = value` on one line: the key, the value and the value's 1-based column. */
function assignment(line: string): { key: string; value: string; column: number } | null {
  const m = /^(\s*)([A-Za-z0-9_.\-"' ]+?)\s*=\s*/.exec(line);
  if (!m) return null;
  const rest = withoutComment(line.slice(m[0].length)).trimEnd();
  return { key: (m[2] as string).trim(), value: rest, column: m[0].length + 1 };
}

/** Where a string that starts at `value[0]` ends on this line; -1 when it is not closed. */
function stringEnd(value: string): number {
  const q = value[0];
  for (let i = 1; i < value.length; i++) {
    if (q === '"' && value[i] === '\\') i++;
    else if (value[i] === q) return i;
  }
  return -1;
}

/** The line at or above `from` (0-based) where an array that is still open began, if any. */
function openArrayStart(lines: readonly string[], from: number): number {
  for (let i = from; i >= 0; i--) {
    const a = assignment(lines[i] ?? '');
    if (a?.value.startsWith('[')) return i;
    if (/^\s*\[/.test(lines[i] ?? '')) return -1;
  }
  return -1;
}

export function explainTomlError(text: string, at: TomlErrorPlace): Explained {
  const lines = text.split(/\r?\n/);
  const line = lines[at.line - 1] ?? '';
  const here = { line: at.line, column: at.column };

  const redefined = /^Cannot redefine existing key '(.*)'\.?$/.exec(at.raw);
  if (redefined) {
    const name = redefined[1] as string;
    const header = /^\s*\[\[?\s*([^\]]*?)\s*\]/.exec(line);
    if (header)
      return {
        ...here,
        reason: `[${header[1]}] is defined a second time (or ${name} was set as a value before); TOML allows one [${header[1]}] table: merge the two`,
      };
    return {
      ...here,
      reason: `${name} is set twice in the same table; keep one of them`,
    };
  }

  // The parser stops at the line after an array left open: it wanted "," or "]" there.
  if (/"\]"/.test(at.raw) && /","/.test(at.raw) && at.column <= firstColumn(line)) {
    const start = openArrayStart(lines, at.line - 2);
    if (start >= 0) {
      const a = assignment(lines[start] ?? '') as { key: string; column: number };
      return {
        line: start + 1,
        column: a.column,
        reason: `the array ${a.key} = [ is not closed: add "]" after its last element (and a "," between elements)`,
      };
    }
  }

  const a = assignment(line);
  if (/^\s*\[/.test(line) && !a) {
    const body = withoutComment(line).trimEnd();
    if (!body.endsWith(']'))
      return { ...here, reason: `a table header needs its closing "]": write ${body.trim()}]` };
    return {
      ...here,
      reason: 'a table header holds dotted names only, such as [services.web.health]',
    };
  }
  if (!a) {
    const word = /^\s*([A-Za-z0-9_.-]+)/.exec(line);
    if (word)
      return {
        ...here,
        reason: `expected "${word[1]} = value": a key needs "=" and then its value`,
      };
    return { ...here, reason: unexpected(at.raw) };
  }
  if (a.value === '')
    return {
      line: at.line,
      column: a.column,
      reason: `${a.key} has no value: write ${a.key} = "…" (a string in quotes, a number, true/false, [an array] or { a table })`,
    };
  // Inside an array or inline table the element at the error is what went wrong.
  const nested = /^[[{]/.test(a.value) && at.column > a.column;
  let column = a.column;
  if (nested) {
    column = at.column;
    while (column > a.column + 1 && /[\w.:-]/.test(line[column - 2] ?? '')) column--;
  }
  const token = nested ? withoutComment(line.slice(column - 1)).trimEnd() : a.value;
  const reason = explainValue(a.key, token, nested);
  if (reason !== null) return { line: at.line, column, reason };
  // Something after a whole value ("200'", `"abc"def`, `["*"]  5`): the value ended before it.
  const before = line.slice(a.column - 1, at.column - 1).trimEnd();
  if (at.column > a.column && isWholeValue(before))
    return {
      ...here,
      reason: `${found(at.raw)} after the value of ${a.key}: one value per key (a comment starts with #)`,
    };
  return { ...here, reason: unexpected(at.raw) };
}

/** A complete scalar or a balanced array, as written before the error. */
function isWholeValue(v: string): boolean {
  if (/^"(?:[^"\\]|\\.)*"$/.test(v) || /^'[^']*'$/.test(v)) return true;
  if (/^[+-]?\d[\d_]*(\.\d+)?([eE][+-]?\d+)?$/.test(v) || v === 'true' || v === 'false')
    return true;
  if (!v.startsWith('[') || !v.endsWith(']')) return false;
  let depth = 0;
  const { at, closed } = unquoted(v);
  for (const i of at) {
    if (v[i] === '[') depth++;
    else if (v[i] === ']' && --depth === 0 && i < v.length - 1) return false;
  }
  return depth === 0 && closed;
}

/** Milliseconds of a duration written bare ("2s" -> 2000), or null when it is not one. */
function millis(word: string): number | null {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(word);
  if (!m) return null;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
  return Math.round(Number(m[1]) * unit);
}

function explainValue(key: string, v: string, nested: boolean): string | null {
  if (v.startsWith('"""') || v.startsWith("'''")) return null;
  if (v.startsWith('"') || v.startsWith("'")) {
    if (stringEnd(v) < 0)
      return `the string is not closed: end it with ${v[0]} on the same line (a string spanning lines needs ${v[0]?.repeat(3)})`;
    if (nested) return 'a "," is missing between two elements';
    return null;
  }
  const word = (v.split(/[\s,\]}#]/)[0] as string).replace(/\s+/g, '');
  if (DURATION_LIKE.test(v)) {
    const ms = millis(word);
    return `durations are strings: write "${word}"${ms !== null ? ` (or whole milliseconds: ${ms})` : ''}`;
  }
  if (HOST_PORT_LIKE.test(v)) return `addresses are strings: write "${word}"`;
  const bare = BARE_WORD.exec(v);
  if (!bare) return null;
  const w = bare[0];
  if (w.toLowerCase() === 'true' || w.toLowerCase() === 'false')
    return `booleans are lower case: write ${w.toLowerCase()}`;
  return nested
    ? `${w} is a bare word; strings need quotes: write "${w}"`
    : `${w} is a bare word; strings need quotes: write ${key} = "${w}"`;
}

function firstColumn(line: string): number {
  return line.length - line.trimStart().length + 1;
}

/** What the parser found, in words: `"}"`, or the end of the line. */
function found(raw: string): string {
  const m = /but (.+) found\.?$/.exec(raw);
  if (!m) return 'something';
  if (m[1] === 'end of input') return 'the end of the file';
  return m[1] === '"\\n"' || m[1] === '"\\r"' ? 'the end of the line' : (m[1] as string);
}

/** The last resort: only what the parser found, not the grammar it wanted. */
function unexpected(raw: string): string {
  if (!/but (.+) found\.?$/.test(raw)) return `TOML syntax error: ${raw}`;
  const what = found(raw);
  return what.startsWith('the end')
    ? `TOML syntax error: ${what} came too early here`
    : `TOML syntax error: unexpected ${what} here`;
}

/** The offending line with a caret under the column, for a terminal. */
export function caretLines(text: string, line: number, column: number): string[] {
  const src = text.split(/\r?\n/)[line - 1] ?? '';
  const num = String(line);
  const pad = ' '.repeat(num.length);
  // Tabs stay tabs under the caret, so it lines up whatever the tab width.
  const lead = src.slice(0, Math.max(0, column - 1)).replace(/[^\t]/g, ' ');
  return [` ${num} | ${src}`, ` ${pad} | ${lead}^`];
}
