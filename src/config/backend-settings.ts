import { InvalidArgumentError } from '../errors.js';
import { parseHostPort } from './address.js';
import { describe } from './duration.js';
import {
  boolean,
  checkKeys,
  duration,
  hostPort,
  integer,
  isTable,
  Problems,
  type Table,
} from './fields.js';
import { LIMITS } from './limits.js';
import type { BackendConfig } from './schema.js';

export const MAX_WEIGHT = 1_000_000;
export const BACKEND_KEYS = [
  'address',
  'weight',
  'backup',
  'max_connections',
  'max_rate',
  'slow_start',
];
/** The backend keys that take a whole number (see WHOLE_NUMBER_KEYS in schema.ts). */
export const BACKEND_WHOLE_NUMBER_KEYS = ['weight', 'max_connections', 'max_rate'] as const;

/** A backend's settings from code (LoadBalancer.addBackend, the admin API). */
export interface BackendOptions {
  weight?: number;
  backup?: boolean;
  maxConnections?: number;
  maxRate?: number;
  /** Milliseconds. */
  slowStart?: number;
}

/** A backend's settings without its address. */
export type BackendSettings = Omit<BackendConfig, 'host' | 'port' | 'address'>;

/**
 * The one validator of a backend's settings, whoever gives them: the config
 * file, `LoadBalancer.addBackend`, the admin API or a discovery answer. `t`
 * holds the TOML keys; `path` ends with "." (or is empty).
 */
export function settings(t: Table, path: string, p: Problems): BackendSettings {
  return {
    // 0 is a soft stop (HAProxy's weight 0): no new sessions, open ones continue.
    weight: integer(t.weight, `${path}weight`, 1, 0, p, MAX_WEIGHT),
    backup: boolean(t.backup, `${path}backup`, false, p),
    maxConnections: integer(
      t.max_connections,
      `${path}max_connections`,
      0,
      0,
      p,
      LIMITS.connections,
    ),
    maxRate: integer(t.max_rate, `${path}max_rate`, 0, 0, p, LIMITS.rate),
    slowStartMs: duration(t.slow_start, `${path}slow_start`, 0, p),
  };
}

/** A backend from the config file: "host:port", or a table with an address and settings. */
export function parseBackend(v: unknown, path: string, p: Problems): BackendConfig | undefined {
  if (!isTable(v) && typeof v !== 'string') {
    p.add(path, `expected "host:port" or a table with address, got ${describe(v)}`);
    return undefined;
  }
  const t: Table = isTable(v) ? v : { address: v };
  if (isTable(v)) checkKeys(v, BACKEND_KEYS, path, p);
  if (t.address === undefined) {
    p.add(`${path}.address`, 'missing; every backend needs an address "host:port"');
    return undefined;
  }
  const hp = hostPort(t.address, isTable(v) ? `${path}.address` : path, p);
  const cfg = settings(t, `${path}.`, p);
  return hp && Object.freeze({ ...hp, ...cfg });
}

/** A backend from code; throws InvalidArgumentError (LB_ERR_INVALID_ARGUMENT) naming every bad setting. */
export function backendFromOptions(address: string, opts: BackendOptions = {}): BackendConfig {
  const p = new Problems(`backend ${address}`);
  const hp = parseHostPort(address);
  if ('error' in hp) p.add('address', hp.error);
  const cfg = settings(
    {
      weight: opts.weight,
      backup: opts.backup,
      max_connections: opts.maxConnections,
      max_rate: opts.maxRate,
      slow_start: opts.slowStart,
    },
    '',
    p,
  );
  if (p.list.length > 0 || 'error' in hp) throw new InvalidArgumentError(p.list.join('; '));
  return Object.freeze({ ...hp, ...cfg });
}

/** A new weight from code or the admin API: a whole number from 0 (a soft stop) to MAX_WEIGHT. */
export function checkWeight(weight: unknown): number {
  const p = new Problems('backend');
  const w = integer(weight ?? Number.NaN, 'weight', 1, 0, p, MAX_WEIGHT);
  if (p.list.length > 0) throw new InvalidArgumentError(p.list.join('; '));
  return w;
}
