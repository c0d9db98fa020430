import type { StrategyName } from '../strategy-names.js';
import { HEALTH_DEFAULTS } from './health.js';
import { PROCESS_DEFAULTS } from './process.js';
import type { AllDownPolicy, LogLevel } from './types.js';

/** Every default the code reads outside a field's spec, stated once. */
export const DEFAULTS = Object.freeze({
  shutdownTimeoutMs: PROCESS_DEFAULTS.shutdownTimeoutMs,
  logLevel: 'info' as LogLevel,
  balance: 'round-robin' as StrategyName,
  connectTimeoutMs: 2_000,
  idleTimeoutMs: 600_000,
  maxRetries: 3,
  retryDelayMs: 100,
  maxConnections: 10_000,
  allDown: 'try-all' as AllDownPolicy,
  queueSize: 1000,
  queueTimeoutMs: 5_000,
  helloTimeoutMs: 5_000,
  requestTimeoutMs: 5_000,
  health: HEALTH_DEFAULTS,
  pool: { minIdle: 2, maxIdle: 10, idleTtlMs: 30_000 },
});
