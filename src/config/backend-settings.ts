import { InvalidArgumentError } from '../errors.js';
import { type HostPort, parseHostPort } from './address.js';
import { describe } from './duration.js';
import {
  booleanOf,
  checkKeys,
  durationOf,
  hostPort,
  integer,
  integerOf,
  isTable,
  Problems,
  type Table,
} from './fields.js';
import { LIMITS, MAX_TIMER_MS } from './limits.js';
import { type Fields, keysOf } from './spec.js';

/** One backend as the config gives it (types.ts re-exports it). */
export interface BackendConfig extends HostPort {
  readonly weight: number;
  readonly backup: boolean;
  /** Open sessions on this backend; at the cap it takes no new ones (0: no cap; NO_SHARE: none). */
  readonly maxConnections: number;
  /** New sessions a second to this backend (0: no limit; NO_SHARE: none). */
  readonly maxRate: number;
  /** Ramp from 10 % to full weight over this long after coming back up (0: off). */
  readonly slowStartMs: number;
  /** Where it runs (a Kubernetes endpoint's zone): shown by the API; absent from a file's backends. */
  readonly zone?: string;
  /**
   * What metrics, logs, the API and routes call it (HAProxy's `server NAME`);
   * absent: its address. Unique in its service (config/service.ts checks).
   */
  readonly name?: string;
}

/** A backend's name: printable, no spaces or "/", so it fits a metrics label and an API path. */
export const BACKEND_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._:@\\[\\]-]{0,252}$';
const NAME_RE = new RegExp(BACKEND_NAME_PATTERN);

/** A name from a registry (discovery) if it is a valid backend name (trailing dot dropped), else undefined. */
export function registryName(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  const n = v.replace(/\.$/, '');
  return NAME_RE.test(n) ? n : undefined;
}

/** The name a backend goes by: its own, else its address. */
export function nameOf(b: { readonly name?: string; readonly address: string }): string {
  return b.name ?? b.address;
}

export const MAX_WEIGHT = 1_000_000;
/** A backend written as a table; "host:port" alone is the same with every setting at its default. */
export const BACKEND_FIELDS = {
  address: { kind: 'address', doc: 'The backend: "host:port" or "[v6]:port"', required: true },
  name: {
    kind: 'string',
    pattern: BACKEND_NAME_PATTERN,
    doc: 'Its name in metrics, the access log, the admin API and routes (unique in the service; absent: the address)',
  },
  weight: {
    kind: 'integer',
    default: 1,
    min: 0,
    max: MAX_WEIGHT,
    doc: 'Share of new sessions relative to the other backends; 0 is a soft stop (no new sessions, open ones continue)',
  },
  backup: {
    kind: 'boolean',
    default: false,
    doc: 'Used only when no primary backend is healthy',
  },
  max_connections: {
    kind: 'integer',
    default: 0,
    min: 0,
    max: LIMITS.connections,
    doc: 'Open sessions on this backend; at the cap it takes no new ones (0: no cap)',
  },
  max_rate: {
    kind: 'integer',
    default: 0,
    min: 0,
    max: LIMITS.rate,
    doc: 'New sessions a second to this backend (0: no limit)',
  },
  slow_start: {
    kind: 'duration',
    default: 0,
    min: 0,
    max: MAX_TIMER_MS,
    doc: 'After coming back up, ramp from 10 % to full weight over this long (0: off)',
  },
} satisfies Fields;
export const BACKEND_KEYS = keysOf(BACKEND_FIELDS);

/** A backend's settings from code (LoadBalancer.addBackend, the admin API). */
export interface BackendOptions {
  weight?: number;
  backup?: boolean;
  maxConnections?: number;
  maxRate?: number;
  /** Milliseconds. */
  slowStart?: number;
  /** Its name (default: the address). */
  name?: string;
}

/** A backend's settings without its address. */
export type BackendSettings = Omit<BackendConfig, 'host' | 'port' | 'address'>;

/**
 * The one validator of a backend's settings, whoever gives them: the config
 * file, `LoadBalancer.addBackend`, the admin API or a discovery answer. `t`
 * holds the TOML keys; `path` ends with "." (or is empty).
 */
export function settings(t: Table, path: string, p: Problems): BackendSettings {
  const f = BACKEND_FIELDS;
  return {
    weight: integerOf(f.weight, t.weight, `${path}weight`, p),
    backup: booleanOf(f.backup, t.backup, `${path}backup`, p),
    maxConnections: integerOf(f.max_connections, t.max_connections, `${path}max_connections`, p),
    maxRate: integerOf(f.max_rate, t.max_rate, `${path}max_rate`, p),
    slowStartMs: durationOf(f.slow_start, t.slow_start, `${path}slow_start`, p),
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
  const name = backendName(t.name, `${path}.name`, p);
  return hp && Object.freeze({ ...hp, ...cfg, ...(name === undefined ? {} : { name }) });
}

/** `name = "pg-a"`: undefined when absent (or bad, which is reported). */
export function backendName(v: unknown, path: string, p: Problems): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !NAME_RE.test(v)) {
    p.add(
      path,
      `expected a name of letters, digits and . _ - : @ [ ] (up to 253, starting with a letter or digit), got ${describe(v)}`,
    );
    return undefined;
  }
  return v;
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
  const name = backendName(opts.name, 'name', p);
  if (p.list.length > 0 || 'error' in hp) throw new InvalidArgumentError(p.list.join('; '));
  return Object.freeze({ ...hp, ...cfg, ...(name === undefined ? {} : { name }) });
}

/** A new weight from code or the admin API: a whole number from 0 (a soft stop) to MAX_WEIGHT. */
export function checkWeight(weight: unknown): number {
  const p = new Problems('backend');
  const w = integer(weight ?? Number.NaN, 'weight', 1, 0, p, MAX_WEIGHT);
  if (p.list.length > 0) throw new InvalidArgumentError(p.list.join('; '));
  return w;
}
