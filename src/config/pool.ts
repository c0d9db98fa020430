import { DEFAULTS } from './defaults.js';
import { checkKeys, durationOf, integerOf, type Problems, table } from './fields.js';
import { LIMITS, MAX_TIMER_MS } from './limits.js';
import { type Fields, keysOf } from './spec.js';
import type { PoolConfig } from './types.js';

/** [services.NAME.pool]: the warm pool. */
export const POOL_FIELDS = {
  min_idle: {
    kind: 'integer',
    default: DEFAULTS.pool.minIdle,
    min: 0,
    max: LIMITS.poolIdle,
    doc: 'Pre-opened connections kept per healthy backend (0: none)',
  },
  max_idle: {
    kind: 'integer',
    default: DEFAULTS.pool.maxIdle,
    min: 0,
    max: LIMITS.poolIdle,
    doc: 'Idle pooled connections per backend at most; at least min_idle',
  },
  idle_ttl: {
    kind: 'duration',
    default: DEFAULTS.pool.idleTtlMs,
    min: 1,
    max: MAX_TIMER_MS,
    doc: 'An idle pooled socket older than this is closed (and replaced)',
  },
} satisfies Fields;

export const POOL_KEYS = keysOf(POOL_FIELDS);

export function parsePool(v: unknown, path: string, p: Problems): PoolConfig {
  const t = table(v, path, p);
  checkKeys(t, POOL_KEYS, path, p);
  const f = POOL_FIELDS;
  const minIdle = integerOf(f.min_idle, t.min_idle, `${path}.min_idle`, p);
  const maxIdle = integerOf(
    f.max_idle,
    t.max_idle,
    `${path}.max_idle`,
    p,
    Math.max(f.max_idle.default, minIdle),
  );
  if (maxIdle < minIdle)
    p.add(`${path}.max_idle`, `must be at least min_idle (${minIdle}), got ${maxIdle}`);
  return Object.freeze({
    minIdle,
    maxIdle,
    idleTtlMs: durationOf(f.idle_ttl, t.idle_ttl, `${path}.idle_ttl`, p),
  });
}
