import { availableParallelism } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { describe } from './duration.js';
import { duration, integer, type Problems, type Table } from './fields.js';
import { checkPlace } from './guarded-file.js';
import { MAX_TIMER_MS } from './limits.js';
import type { Fields } from './spec.js';

export interface ProcessConfig {
  readonly shutdownTimeoutMs: number;
  /** Worker processes (node:cluster); 1 runs everything in one process. "auto" is resolved to the core count. */
  readonly workers: number;
  /** Written with this process's PID once it serves (and by an upgrade's new process once it serves); null: none. */
  readonly pidFile: string | null;
  /** SIGTERM/SIGINT: how long /readyz answers 503 while still accepting, before accepting stops. */
  readonly drainDelayMs: number;
  /** An upgrade's new process must say it serves within this, or it is stopped and the old one keeps serving. */
  readonly upgradeTimeoutMs: number;
}

export const PROCESS_DEFAULTS = Object.freeze({
  shutdownTimeoutMs: 30_000,
  drainDelayMs: 0,
  upgradeTimeoutMs: 30_000,
});

export const MAX_WORKERS = 256;
const WORKER_COUNT = {
  kind: 'integer',
  min: 1,
  max: MAX_WORKERS,
  doc: 'Processes serving traffic',
} as const;

export const PROCESS_FIELDS = {
  shutdown_timeout: {
    kind: 'duration',
    default: PROCESS_DEFAULTS.shutdownTimeoutMs,
    min: 0,
    max: MAX_TIMER_MS,
    doc: 'On SIGTERM/SIGINT, open sessions may finish for this long; then they are cut',
  },
  workers: {
    kind: 'anyOf',
    default: 1,
    options: [WORKER_COUNT, { kind: 'enum', values: ['auto'], doc: 'One worker per core' }],
    doc: 'Processes serving traffic: 1-256 or "auto" (a primary and one worker per core)',
  },
  pid_file: {
    kind: 'string',
    doc: "Written with the PID once the process serves (and by an upgrade's new process); relative to the config file",
  },
  drain_delay: {
    kind: 'duration',
    default: PROCESS_DEFAULTS.drainDelayMs,
    min: 0,
    max: MAX_TIMER_MS,
    doc: 'On SIGTERM/SIGINT: /readyz answers 503 this long while still accepting, before accepting stops',
  },
  upgrade_timeout: {
    kind: 'duration',
    default: PROCESS_DEFAULTS.upgradeTimeoutMs,
    min: 1,
    max: MAX_TIMER_MS,
    doc: "An upgrade's new process must say it serves within this, or the old one keeps serving",
  },
} satisfies Fields;

/** `workers = N` (1-256) or "auto": one per core the OS gives this process. */
function workers(v: unknown, p: Problems): number {
  if (v === 'auto') return Math.min(availableParallelism(), MAX_WORKERS);
  if (typeof v === 'string') {
    p.add('process.workers', `expected a whole number or "auto", got ${describe(v)}`);
    return 1;
  }
  return integer(v, 'process.workers', 1, 1, p, MAX_WORKERS);
}

/** A file name, taken from `baseDir` (the config file's directory) when relative. */
function pidFile(v: unknown, baseDir: string, p: Problems): string | null {
  if (v === undefined) return null;
  if (typeof v !== 'string' || v.length === 0 || v.includes('\0')) {
    p.add(
      'process.pid_file',
      `expected a file name such as "/run/blitz-lb.pid", got ${describe(v)}`,
    );
    return null;
  }
  const file = isAbsolute(v) ? v : resolve(baseDir, v);
  // Written at start (temp file + rename): its directory must exist, and a FIFO or a
  // directory already there is found by `check`, not by the first write.
  const bad = checkPlace(file, 'file');
  if (bad) p.add('process.pid_file', `${file}: ${bad.why}`);
  return file;
}

/** The [process] table, already checked for unknown keys. */
export function processConfig(proc: Table, baseDir: string, p: Problems): ProcessConfig {
  const d = PROCESS_DEFAULTS;
  return Object.freeze({
    shutdownTimeoutMs: duration(
      proc.shutdown_timeout,
      'process.shutdown_timeout',
      d.shutdownTimeoutMs,
      p,
    ),
    workers: workers(proc.workers, p),
    pidFile: pidFile(proc.pid_file, baseDir, p),
    drainDelayMs: duration(proc.drain_delay, 'process.drain_delay', d.drainDelayMs, p),
    upgradeTimeoutMs: duration(
      proc.upgrade_timeout,
      'process.upgrade_timeout',
      d.upgradeTimeoutMs,
      p,
      1,
    ),
  });
}
