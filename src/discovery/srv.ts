import { isIP } from 'node:net';
import { endpointOf } from '../config/address.js';
import { registryName } from '../config/backend-settings.js';
import type { DiscoveryConfig } from '../config/discovery.js';
import type { BackendConfig } from '../config/schema.js';
import { absolute, dnsBacked, dnsFailure, resolveAddresses } from './resolver.js';
import { type Answer, DiscoveryError, type Source } from './source.js';

/**
 * kind = "srv": the SRV records of `_service._proto.name` give targets, ports
 * and weights. Backends have one backup tier, so the lowest priority is the
 * primaries, the next one the backups, and any higher one is left out.
 * node:dns gives no TTL with SRV records, so the targets' A / AAAA TTLs (and
 * `interval`) decide when to look again.
 */
/**
 * More SRV targets than this is a broken registry: each one costs an A and
 * an AAAA query, all at once, before the answer's size could be judged.
 */
export const MAX_SRV_TARGETS = 1000;

export function srvSource(cfg: DiscoveryConfig): Source {
  // resolveSrv, then the targets' A / AAAA at once.
  return dnsBacked(cfg, 3, async (resolver, signal): Promise<Answer> => {
    const onAbort = (): void => resolver.cancel();
    signal.addEventListener('abort', onAbort, { once: true });
    let records: Awaited<ReturnType<typeof resolver.resolveSrv>>;
    try {
      records = await resolver.resolveSrv(absolute(cfg.name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENODATA') return { backends: [], ttlMs: null };
      throw dnsFailure(cfg.name, err);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    // RFC 2782: a target of "." says the service is not offered there.
    // Port 0 is no endpoint (a broken or hostile answer), and is never dialled.
    const usable = records.filter((r) => r.name !== '' && r.name !== '.' && r.port > 0);
    const tiers = [...new Set(usable.map((r) => r.priority))].sort((a, b) => a - b).slice(0, 2);
    const inTiers = usable
      .filter((r) => tiers.includes(r.priority))
      .sort((a, b) => a.priority - b.priority);
    const targets = [...new Set(inTiers.map((r) => r.name))];
    if (targets.length > MAX_SRV_TARGETS)
      throw new DiscoveryError(
        `${cfg.name}: ${targets.length} SRV targets, over the limit of ${MAX_SRV_TARGETS}`,
      );
    const resolved = await Promise.allSettled(
      targets.map((t) =>
        isIP(t) !== 0
          ? Promise.resolve({ addresses: [t], ttlMs: null })
          : resolveAddresses(resolver, t, 'any', signal),
      ),
    );
    const byTarget = new Map<string, string[]>();
    let ttlMs: number | null = null;
    let firstError: unknown = null;
    resolved.forEach((r, i) => {
      if (r.status === 'rejected') {
        firstError ??= r.reason;
        return;
      }
      byTarget.set(targets[i] as string, r.value.addresses);
      if (r.value.ttlMs !== null) ttlMs = Math.min(ttlMs ?? r.value.ttlMs, r.value.ttlMs);
    });
    // Some targets unresolvable: serve the others. None: the lookup failed.
    if (targets.length > 0 && byTarget.size === 0) throw firstError;
    const backends: BackendConfig[] = [];
    const seen = new Set<string>();
    const names = srvNames(inTiers, byTarget);
    for (const r of inTiers) {
      for (const ip of byTarget.get(r.name) ?? []) {
        // Canonical, as a written backend is (an AAAA "::ffff:a.b.c.d" is a.b.c.d).
        const at = endpointOf(ip, r.port);
        if (seen.has(at.address)) continue;
        seen.add(at.address);
        backends.push(
          Object.freeze({
            ...cfg.backend,
            ...at,
            // SRV weight 0 means "rarely"; the lowest weight here is 1.
            weight: Math.max(1, r.weight),
            backup: r.priority !== tiers[0],
            ...nameFor(names, r),
          }),
        );
      }
    }
    return { backends, ttlMs };
  });
}

/**
 * A discovered backend's name: its SRV target ("db1.example.com") when that
 * target gives one endpoint, "target:port" when it gives one per port, and
 * none (the address) when one target resolves to several addresses on a
 * port, where the name would not tell them apart.
 */
function srvNames(
  records: readonly { readonly name: string; readonly port: number }[],
  byTarget: ReadonlyMap<string, readonly string[]>,
): Map<string, string> {
  const perTarget = new Map<string, number>();
  const perPort = new Map<string, number>();
  for (const r of records) {
    const n = byTarget.get(r.name)?.length ?? 0;
    perTarget.set(r.name, (perTarget.get(r.name) ?? 0) + n);
    perPort.set(`${r.name} ${r.port}`, (perPort.get(`${r.name} ${r.port}`) ?? 0) + n);
  }
  const out = new Map<string, string>();
  for (const r of records) {
    const name = registryName(r.name);
    if (name === undefined) continue;
    if (perTarget.get(r.name) === 1) out.set(`${r.name} ${r.port}`, name);
    else if (perPort.get(`${r.name} ${r.port}`) === 1)
      out.set(`${r.name} ${r.port}`, `${name}:${r.port}`);
  }
  return out;
}

function nameFor(
  names: ReadonlyMap<string, string>,
  r: { readonly name: string; readonly port: number },
): { name?: string } {
  const n = names.get(`${r.name} ${r.port}`);
  return n === undefined ? {} : { name: n };
}
