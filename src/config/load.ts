import { dirname, resolve } from 'node:path';
import toml from 'toml';
import { ConfigError, ConfigSyntaxError } from '../errors.js';
import { isTable } from './fields.js';
import { readGuarded, refusalOf } from './guarded-file.js';
import { type Config, DURATION_KEYS, parseConfig, WHOLE_NUMBER_KEYS } from './schema.js';
import { caretLines, explainTomlError } from './toml-errors.js';

/** A config file holds a few KiB; more is a mistake (or /dev/zero), not a config. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

interface TomlSyntaxError {
  message: string;
  line?: number;
  column?: number;
  location?: { start: { line: number; column: number } };
}

/**
 * Parses TOML text. A syntax error becomes `file:line:col: reason` with the line and a
 * caret under the place; the reason is a sentence made from that line
 * (config/toml-errors.ts), not the parser's list of expected tokens.
 */
export function parseToml(text: string, source: string): unknown {
  try {
    return toml.parse(text);
  } catch (err) {
    const e = err as TomlSyntaxError;
    const line = e.location?.start.line ?? e.line;
    const col = e.location?.start.column ?? e.column ?? 1;
    if (line === undefined) throw new ConfigError([`${source}: ${e.message}`]);
    const x = explainTomlError(text, { line, column: col, raw: e.message });
    const problem = [
      `${source}:${x.line}:${x.column}: ${x.reason}`,
      ...caretLines(text, x.line, x.column),
    ].join('\n');
    throw new ConfigSyntaxError(problem, x.line, x.column, x.reason);
  }
}

/**
 * Float literals (`3.0`) at keys that take a whole number. TOML parses `3.0` to the JS
 * number 3, the same as `3`, so parseConfig cannot tell them apart; a second parse with
 * `bigint: true` (toml's documented option) returns integers as BigInt and floats as
 * number, which can. `text` must already have parsed.
 */
export function wholeNumberFloats(text: string, source: string): string[] {
  const out: string[] = [];
  const walk = (v: unknown, path: string): void => {
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) walk(v[i], `${path}[${i}]`);
      return;
    }
    if (!isTable(v)) return;
    for (const [key, x] of Object.entries(v)) {
      const at = path ? `${path}.${key}` : key;
      // A float with a fraction (2.5) or Infinity fails parseConfig's own checks already.
      if (typeof x === 'number' && Number.isInteger(x)) {
        if (WHOLE_NUMBER_KEYS.has(key))
          out.push(`${source}: ${at}: expected a whole number, got the float ${x}.0; write ${x}`);
        else if (DURATION_KEYS.has(key))
          out.push(
            `${source}: ${at}: expected whole milliseconds or a string with a unit, got the float ${x}.0; write ${x}`,
          );
      } else walk(x, at);
    }
  };
  let doc: unknown;
  try {
    doc = toml.parse(text, { bigint: true });
  } catch {
    // Parsed once already; should this parse still fail, parseConfig's checks remain.
    return out;
  }
  walk(doc, '');
  return out;
}

/**
 * Reads a config file through the guarded reader (config/guarded-file.ts): a
 * regular file (a symlink to one is followed) of at most MAX_CONFIG_BYTES. A
 * FIFO would block the process until a writer came, /dev/zero would fill
 * memory, and a huge file would stall the event loop during a reload.
 */
export function readConfigFile(file: string): string {
  try {
    return readGuarded(file, MAX_CONFIG_BYTES).toString('utf8');
  } catch (err) {
    const r = refusalOf(err);
    const tail = r.kind === 'too-big' ? ' for a config file' : '';
    throw new ConfigError([`${file}: cannot read config: ${r.why}${tail}`]);
  }
}

/** Reads, parses and validates a config file. Throws ConfigError (code LB_ERR_CONFIG). */
export function loadConfig(file: string): Config {
  const text = readConfigFile(file);
  const raw = parseToml(text, file);
  // Float and schema problems together: an operator fixes the file in one pass.
  const problems = wholeNumberFloats(text, file);
  let config: Config | undefined;
  try {
    config = parseConfig(raw, { source: file, baseDir: dirname(resolve(file)) });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
  }
  if (problems.length > 0 || !config) throw new ConfigError(problems);
  return config;
}
