import { formatHostPort, parseHostPort } from '../config/address.js';
import { type BackendSettings, registryName } from '../config/backend-settings.js';
import { isTable } from '../config/fields.js';
import type { BackendConfig } from '../config/schema.js';
import { DiscoveryError } from './source.js';

/**
 * The parts of a discovery.k8s.io/v1 EndpointSlice that blitz-lb reads (the
 * Kubernetes API reference, "EndpointSlice v1"): its address type, its ports
 * (one set for every endpoint of the slice, which is why a named port may
 * have another number in another slice), and per endpoint its addresses (all
 * fungible: the first is used), conditions and zone.
 */
export interface Slice {
  readonly name: string;
  readonly addressType: string;
  readonly ports: readonly { name: string; port: number | null }[];
  readonly endpoints: readonly Endpoint[];
}

export interface Endpoint {
  readonly address: string;
  /** conditions.ready, nil read as true (the reference says so). */
  readonly ready: boolean;
  /** conditions.serving, nil read as `ready`. */
  readonly serving: boolean;
  /** conditions.terminating, nil read as false. */
  readonly terminating: boolean;
  readonly zone: string | null;
  /** Its pod (targetRef.name), else its hostname: the backend's name; undefined: none. */
  readonly name: string | undefined;
  /** hints.forZones: kept for a zone-aware strategy to come; not used to pick yet. */
  readonly forZones: readonly string[];
}

const boolOr = (v: unknown, d: boolean): boolean => (typeof v === 'boolean' ? v : d);

/** One EndpointSlice object (from a list's items or a watch event) as a Slice; throws on a shape that is not one. */
export function parseSlice(obj: unknown): Slice {
  if (!isTable(obj) || !isTable(obj.metadata) || typeof obj.metadata.name !== 'string')
    throw new DiscoveryError('an EndpointSlice without metadata.name');
  const name = obj.metadata.name;
  const ports = (Array.isArray(obj.ports) ? obj.ports : []).filter(isTable).map((p) => ({
    name: typeof p.name === 'string' ? p.name : '',
    port: typeof p.port === 'number' && Number.isInteger(p.port) ? p.port : null,
  }));
  const endpoints: Endpoint[] = [];
  for (const e of Array.isArray(obj.endpoints) ? obj.endpoints : []) {
    if (!isTable(e) || !Array.isArray(e.addresses) || typeof e.addresses[0] !== 'string') continue;
    const c = isTable(e.conditions) ? e.conditions : {};
    const ready = boolOr(c.ready, true);
    const hints = isTable(e.hints) && Array.isArray(e.hints.forZones) ? e.hints.forZones : [];
    endpoints.push({
      address: e.addresses[0],
      ready,
      serving: boolOr(c.serving, ready),
      terminating: boolOr(c.terminating, false),
      zone: typeof e.zone === 'string' && e.zone !== '' ? e.zone : null,
      name:
        registryName(isTable(e.targetRef) ? e.targetRef.name : undefined) ??
        registryName(e.hostname),
      forZones: hints.flatMap((h) => (isTable(h) && typeof h.name === 'string' ? [h.name] : [])),
    });
  }
  return {
    name,
    addressType: typeof obj.addressType === 'string' ? obj.addressType : '',
    ports,
    endpoints,
  };
}

/** The port of `slice` that `want` names; null: the slice has no such port (or, with no `want`, not exactly one). */
function portOf(slice: Slice, want: string | number | null): number | null {
  if (typeof want === 'number') return want;
  if (want === null) return slice.ports.length === 1 ? (slice.ports[0]?.port ?? null) : null;
  return slice.ports.find((p) => p.name === want)?.port ?? null;
}

/**
 * Whether an endpoint takes new sessions. `ready` is false for a terminating
 * endpoint; one still `serving` while terminating is left out all the same:
 * the driver drains it (its open sessions finish, it takes no new ones) and
 * removes it once they have ended. An endpoint not serving goes the same way.
 */
export function isCandidate(e: Endpoint): boolean {
  return e.ready && !e.terminating;
}

/**
 * The backends of every slice joined: candidates only, each address once (an
 * endpoint may sit in two slices while the controller moves it), its zone
 * kept. Slices of another address type than IPv4, IPv6 or FQDN, and slices
 * without the port wanted, add nothing.
 */
export function backendsOf(
  slices: Iterable<Slice>,
  want: string | number | null,
  template: BackendSettings,
): BackendConfig[] {
  const out = new Map<string, BackendConfig>();
  const seenPorts = new Set<string>();
  let matched = false;
  for (const s of slices) {
    if (s.addressType !== 'IPv4' && s.addressType !== 'IPv6' && s.addressType !== 'FQDN') continue;
    for (const p of s.ports) seenPorts.add(p.name === '' ? String(p.port) : `${p.name}=${p.port}`);
    const port = portOf(s, want);
    if (port === null || port < 1 || port > 65_535) continue;
    matched = true;
    for (const e of s.endpoints) {
      if (!isCandidate(e)) continue;
      const hp = parseHostPort(formatHostPort(e.address, port));
      if ('error' in hp || out.has(hp.address)) continue;
      out.set(
        hp.address,
        Object.freeze({
          ...hp,
          ...template,
          ...(e.zone === null ? {} : { zone: e.zone }),
          ...(e.name === undefined ? {} : { name: e.name }),
        }),
      );
    }
  }
  // A port name mistyped, or a Service of several ports and no `port`: say so, not "empty".
  if (!matched && seenPorts.size > 0)
    throw new DiscoveryError(
      `${want === null ? 'the Service has several ports: set port' : `no port ${JSON.stringify(want)}`} (its slices have ${[...seenPorts].join(', ')})`,
    );
  return [...out.values()];
}
