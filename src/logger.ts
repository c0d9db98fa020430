import { type Logger, pino } from 'pino';
import type { LogFormat } from './config/log-output.js';
import type { LogLevel } from './config/schema.js';

export type { Logger };

/** How lines are written ([log] format and hostname). */
export interface LineOptions {
  /** "pino": levels as numbers (30); "json": as names ("info"). */
  readonly format?: LogFormat;
  /** Added to every line as "hostname" (null or absent: not written). */
  readonly hostname?: string | null;
}

/**
 * The root logger. Components take `logger.child({ component })` once at
 * construction; nothing creates loggers per session.
 */
export function createLogger(
  level: LogLevel,
  destination?: pino.DestinationStream | null,
  lines: LineOptions = {},
): Logger {
  const opts: pino.LoggerOptions = {
    level,
    base: lines.hostname ? { pid: process.pid, hostname: lines.hostname } : { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    ...(lines.format === 'json'
      ? { formatters: { level: (label: string) => ({ level: label }) } }
      : {}),
  };
  return destination ? pino(opts, destination) : pino(opts);
}

/** A logger that drops everything: the library default when the caller passes none. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
