import { readFileSync } from 'node:fs';
import toml from 'toml';
import { ConfigError } from '../errors.js';
import { type Config, parseConfig } from './schema.js';

interface TomlSyntaxError {
  message: string;
  line?: number;
  column?: number;
  location?: { start: { line: number; column: number } };
}

/** Parses TOML text; a syntax error becomes `file:line:col: message`. */
export function parseToml(text: string, source: string): unknown {
  try {
    return toml.parse(text);
  } catch (err) {
    const e = err as TomlSyntaxError;
    const line = e.location?.start.line ?? e.line;
    const col = e.location?.start.column ?? e.column;
    const where = line !== undefined ? `${source}:${line}:${col ?? 1}` : source;
    throw new ConfigError([`${where}: ${e.message}`]);
  }
}

/** Reads, parses and validates a config file. Throws ConfigError (code LB_ERR_CONFIG). */
export function loadConfig(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'is a directory'
          : (err as Error).message;
    throw new ConfigError([`${file}: cannot read config: ${why}`]);
  }
  return parseConfig(parseToml(text, file), { source: file });
}
