import { formatHostPort } from '../config/address.js';
import type { BackendSettings } from '../config/backend-settings.js';
import { parseBackend, registryName } from '../config/backend-settings.js';
import { isTable, Problems, type Table } from '../config/fields.js';
import type { BackendConfig } from '../config/schema.js';
import { DiscoveryError } from './source.js';

/** More backends than this in one answer is a broken registry, not a service. */
export const MAX_DISCOVERED = 10_000;

/** The discovery table's `backend` settings as TOML keys, under an entry's own. */
function templateKeys(t: BackendSettings): Table {
  return {
    weight: t.weight,
    backup: t.backup,
    max_connections: t.maxConnections,
    max_rate: t.maxRate,
    slow_start: t.slowStartMs,
  };
}

function fail(problems: readonly string[]): never {
  const more = problems.length > 3 ? ` (and ${problems.length - 3} more)` : '';
  throw new DiscoveryError(`${problems.slice(0, 3).join('; ')}${more}`);
}

/**
 * The generic shape, from a file or a URL: an array of backends written as
 * in `backends` ("host:port" or a table), or a table whose `backends` is one.
 * Every entry is checked by the file's own validator; one bad entry fails the
 * whole answer, so a half-written list never replaces a good one.
 */
/** An answer longer than MAX_DISCOVERED is refused whole, its length and the limit named. */
function withinLimit(source: string, n: number, what: string): void {
  if (n > MAX_DISCOVERED)
    throw new DiscoveryError(`${source}: ${n} ${what}, over the limit of ${MAX_DISCOVERED}`);
}

export function parseEntries(
  doc: unknown,
  template: BackendSettings,
  source: string,
): BackendConfig[] {
  const list = isTable(doc) ? doc.backends : doc;
  if (!Array.isArray(list))
    throw new DiscoveryError(
      `${source}: expected an array of backends or a table with "backends" = [...]`,
    );
  withinLimit(source, list.length, 'backends');
  const p = new Problems(source);
  const base = templateKeys(template);
  const out: BackendConfig[] = [];
  const seen = new Set<string>();
  list.forEach((e, i) => {
    const raw = isTable(e)
      ? { ...base, ...e }
      : typeof e === 'string'
        ? { ...base, address: e }
        : e;
    const b = parseBackend(raw, `backends[${i}]`, p);
    if (!b) return;
    if (seen.has(b.address)) p.add(`backends[${i}]`, `duplicate backend ${b.address}`);
    seen.add(b.address);
    out.push(b);
  });
  if (p.list.length > 0) fail(p.list);
  return out;
}

interface ConsulEntry {
  Node?: { Address?: unknown };
  Service?: {
    ID?: unknown;
    Address?: unknown;
    Port?: unknown;
    Weights?: { Passing?: unknown };
  };
  Checks?: unknown;
}

/**
 * Consul's `/v1/health/service/NAME` answer: one entry per instance, its
 * address the service's (or else its node's), its weight Weights.Passing. An
 * instance with a check not passing is left out, should the URL lack
 * `?passing`.
 */
export function parseConsul(
  doc: unknown,
  template: BackendSettings,
  source: string,
): BackendConfig[] {
  if (!Array.isArray(doc))
    throw new DiscoveryError(`${source}: expected Consul's array of service entries`);
  withinLimit(source, doc.length, 'entries');
  const p = new Problems(source);
  const base = templateKeys(template);
  const out: BackendConfig[] = [];
  const seen = new Set<string>();
  doc.forEach((raw: unknown, i) => {
    const e = (isTable(raw) ? raw : {}) as ConsulEntry;
    // Registry JSON is network input: a Checks that is no array is a bad entry, not a TypeError.
    if (e.Checks !== undefined && !Array.isArray(e.Checks)) {
      p.add(`[${i}]`, 'expected Checks to be an array');
      return;
    }
    if (e.Checks?.some((c) => !isTable(c) || c.Status !== 'passing')) return;
    const host = e.Service?.Address || e.Node?.Address;
    const port = e.Service?.Port;
    if (typeof host !== 'string' || typeof port !== 'number') {
      p.add(`[${i}]`, 'expected Service.Address (or Node.Address) and Service.Port');
      return;
    }
    const w = e.Service?.Weights?.Passing;
    const id = registryName(e.Service?.ID);
    const b = parseBackend(
      {
        ...base,
        address: formatHostPort(host, port),
        ...(w === undefined ? {} : { weight: w }),
        ...(id === undefined ? {} : { name: id }),
      },
      `[${i}]`,
      p,
    );
    if (!b || seen.has(b.address)) return;
    seen.add(b.address);
    out.push(b);
  });
  if (p.list.length > 0) fail(p.list);
  return out;
}
