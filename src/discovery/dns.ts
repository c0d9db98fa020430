import { endpointOf } from '../config/address.js';
import type { DiscoveryConfig } from '../config/discovery.js';
import type { BackendConfig } from '../config/schema.js';
import { dnsBacked, resolveAddresses } from './resolver.js';
import type { Answer, Source } from './source.js';

/**
 * kind = "dns": every A / AAAA record of `name` is a backend on `port`
 * (HAProxy server-template with resolvers, Envoy STRICT_DNS), looked up
 * again when the shortest TTL runs out.
 */
export function dnsSource(cfg: DiscoveryConfig): Source {
  return dnsBacked(cfg, 2, async (resolver, signal): Promise<Answer> => {
    const found = await resolveAddresses(resolver, cfg.name, cfg.family, signal);
    const seen = new Set<string>();
    const backends: BackendConfig[] = [];
    for (const ip of found.addresses) {
      // Canonical, as a written backend is: an AAAA "::ffff:a.b.c.d" is the A record's a.b.c.d.
      const at = endpointOf(ip, cfg.port);
      if (seen.has(at.address)) continue;
      seen.add(at.address);
      backends.push(Object.freeze({ ...at, ...cfg.backend }));
    }
    return { backends, ttlMs: found.ttlMs };
  });
}
