import { type Logger, pino } from 'pino';
import type { LogLevel } from './config/schema.js';

export type { Logger };

/**
 * The root logger. Components take `logger.child({ component })` once at
 * construction; nothing creates loggers per session.
 */
export function createLogger(level: LogLevel, destination?: pino.DestinationStream): Logger {
  const opts = { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime };
  return destination ? pino(opts, destination) : pino(opts);
}

/** A logger that drops everything: the library default when the caller passes none. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
