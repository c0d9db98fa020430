import { durationOf, integerOf, oneOfSpec, optionalTable, type Problems } from './fields.js';
import { MAX_TIMER_MS } from './limits.js';
import { type Fields, keysOf } from './spec.js';

/** What a stick entry is keyed by: the client's address (after a trusted PROXY header) or its SNI name. */
export const STICK_ON = ['source', 'sni'] as const;
export type StickOn = (typeof STICK_ON)[number];

/** `[services.NAME.stick]`: keep each client on the backend it was first given. */
export interface StickConfig {
  readonly on: StickOn;
  /** Idle time after which an entry is forgotten (here and, shared, in Redis). */
  readonly expireMs: number;
  /** Entries kept; the least recently used go first. */
  readonly size: number;
}

export const STICK_DEFAULTS = Object.freeze({ expireMs: 30 * 60_000, size: 100_000 });

export const STICK_FIELDS = {
  on: {
    kind: 'enum',
    values: STICK_ON,
    default: 'source' as StickOn,
    doc: 'The key: source (the client address, after a trusted PROXY header) | sni (the ClientHello name; needs sni = [...])',
  },
  expire: {
    kind: 'duration',
    default: STICK_DEFAULTS.expireMs,
    min: 1_000,
    max: MAX_TIMER_MS,
    doc: 'Idle time after which an entry is forgotten',
  },
  size: {
    kind: 'integer',
    default: STICK_DEFAULTS.size,
    min: 1,
    max: 10_000_000,
    doc: 'Entries kept; the least recently used go first',
  },
} satisfies Fields;
export const STICK_KEYS = keysOf(STICK_FIELDS);

/** `hash_balance_factor` (a service key): ip-hash with bounded loads, HAProxy's hash-balance-factor. */
export const HASH_BALANCE_FACTOR_FIELD = {
  kind: 'integer',
  default: 0,
  min: 0,
  max: 10_000,
  doc: 'ip-hash only: no backend takes more than this % of the average load (0: off; else > 100, e.g. 125)',
} as const;

export const parseStick = optionalTable(STICK_KEYS, (t, path, p, hasSni: boolean): StickConfig => {
  const f = STICK_FIELDS;
  const on = oneOfSpec(f.on, t.on, `${path}.on`, p);
  if (on === 'sni' && !hasSni)
    p.add(`${path}.on`, 'on = "sni" needs the service to route by SNI (sni = [...])');
  return Object.freeze({
    on,
    expireMs: durationOf(f.expire, t.expire, `${path}.expire`, p),
    size: integerOf(f.size, t.size, `${path}.size`, p),
  });
});

/** hash_balance_factor: 0 (off) or above 100 (a bound under the average would refuse every backend), ip-hash only. */
export function parseHashBalanceFactor(
  v: unknown,
  path: string,
  balance: string,
  p: Problems,
): number {
  const n = integerOf(HASH_BALANCE_FACTOR_FIELD, v, path, p);
  if (n !== 0 && n <= 100) p.add(path, `must be 0 (off) or above 100 (e.g. 125), got ${n}`);
  if (n !== 0 && balance !== 'ip-hash')
    p.add(path, `applies to balance = "ip-hash" only; this service balances by "${balance}"`);
  return n > 100 ? n : 0;
}
