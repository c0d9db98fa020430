import { promises as dns } from 'node:dns';
import type { DiscoveryConfig } from '../config/discovery.js';
import { errnoText } from '../errno.js';
import { type Answer, DiscoveryError, type Source } from './source.js';

/** A resolver of its own: a set server (`resolver = "ip:port"`) and one try within the timeout. */
export function createResolver(server: string | null, timeoutMs: number): dns.Resolver {
  const r = new dns.Resolver({ timeout: timeoutMs, tries: 1 });
  if (server) r.setServers([server]);
  return r;
}

/**
 * A discovery source that asks DNS (kind = "dns", "srv"): its own resolver,
 * and a deadline of `queries` timeouts (the queries one lookup makes in turn).
 */
export function dnsBacked(
  cfg: DiscoveryConfig,
  queries: number,
  lookup: (resolver: dns.Resolver, signal: AbortSignal) => Promise<Answer>,
): Source {
  const resolver = createResolver(cfg.resolver, cfg.timeoutMs);
  return {
    target: cfg.name,
    deadlineMs: () => cfg.timeoutMs * queries,
    lookup: (signal) => lookup(resolver, signal),
  };
}

/** The name as an absolute one, so the resolver never tries it under the search domains. */
export function absolute(name: string): string {
  return name.endsWith('.') ? name : `${name}.`;
}

/** What node:dns codes mean when a query failed (ENOTFOUND is an NXDOMAIN here). */
const DNS_WORDS: Readonly<Record<string, string>> = {
  ENOTFOUND: 'NXDOMAIN (no such name)',
  ETIMEOUT: 'no answer (timeout)',
  ECANCELLED: 'cancelled',
  ECONNREFUSED: 'the DNS server refused',
  ESERVFAIL: 'SERVFAIL',
};

/** A node:dns failure in words an operator reads: NXDOMAIN, timeout, refused. */
export function dnsFailure(name: string, err: unknown): DiscoveryError {
  return new DiscoveryError(`${name}: ${errnoText(err, { words: DNS_WORDS, otherwise: 'code' })}`);
}

export interface Addresses {
  addresses: string[];
  /** The smallest TTL among the records, in ms; null with no record. */
  ttlMs: number | null;
}

/**
 * A name's A and/or AAAA records with their TTLs. "No record of this type"
 * (ENODATA) is an empty part; any other error fails the lookup.
 */
export async function resolveAddresses(
  r: dns.Resolver,
  name: string,
  family: 'any' | 'ipv4' | 'ipv6',
  signal: AbortSignal,
): Promise<Addresses> {
  const onAbort = (): void => r.cancel();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    const fqdn = absolute(name);
    const parts = await Promise.allSettled([
      family === 'ipv6' ? Promise.resolve([]) : r.resolve4(fqdn, { ttl: true }),
      family === 'ipv4' ? Promise.resolve([]) : r.resolve6(fqdn, { ttl: true }),
    ]);
    const out: Addresses = { addresses: [], ttlMs: null };
    for (const part of parts) {
      if (part.status === 'rejected') {
        if ((part.reason as NodeJS.ErrnoException).code === 'ENODATA') continue;
        throw dnsFailure(name, part.reason);
      }
      for (const rec of part.value) {
        out.addresses.push(rec.address);
        out.ttlMs = Math.min(out.ttlMs ?? Number.POSITIVE_INFINITY, rec.ttl * 1000);
      }
    }
    return out;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
