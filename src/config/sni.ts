import { badPattern, SniRoutes } from '../sni-routes.js';
import { describe } from './duration.js';
import type { Problems } from './fields.js';
import type { ServiceConfig } from './types.js';

/** `sni = [...]`: host names, "*.domain" wildcards and the default "*". */
export function sniList(v: unknown, path: string, p: Problems): readonly string[] | null {
  if (v === undefined) return null;
  if (!Array.isArray(v) || v.length === 0) {
    p.add(
      path,
      `expected a non-empty array such as ["api.example.com", "*.example.com"], got ${describe(v)}`,
    );
    return null;
  }
  const out: string[] = [];
  v.forEach((n, i) => {
    const bad = typeof n === 'string' ? badPattern(n) : `expected a host name, got ${describe(n)}`;
    if (bad) p.add(`${path}[${i}]`, bad);
    else out.push(n as string);
  });
  return Object.freeze(out);
}

/**
 * Which services serve from one listener: those on the same address when any
 * of them routes by SNI (or the port is fixed, where two would clash anyway);
 * otherwise each service alone. Port 0 (tests, embedding) is shared only by
 * services that route by SNI.
 */
export function listenKey(cfg: ServiceConfig): string {
  return cfg.listen.port !== 0 || cfg.listen.host === '' || cfg.sni
    ? `listen ${cfg.listen.address}`
    : `service ${cfg.name} ${cfg.listen.address}`;
}

/** A service whose listener reads the ClientHello or terminates TLS (its sessions start in proxy/tls/front.ts). */
export function isFronted(cfg: ServiceConfig): boolean {
  return cfg.sni !== null || cfg.tls !== null;
}

/**
 * Services that share a listen address must each say which names they take,
 * agree on what comes before the hello (the PROXY header, the deadline), and
 * never both claim one name and protocol: `check` says which pair is ambiguous.
 */
export function checkSharedListens(services: readonly ServiceConfig[], p: Problems): void {
  const groups = new Map<string, ServiceConfig[]>();
  for (const s of services) {
    if (!s.sni) continue;
    const k = listenKey(s);
    const g = groups.get(k);
    if (g) g.push(s);
    else groups.set(k, [s]);
  }
  for (const s of services) {
    if (s.sni || !groups.has(listenKey(s))) continue;
    const names = (groups.get(listenKey(s)) as ServiceConfig[]).map((o) => `services.${o.name}`);
    p.add(
      `services.${s.name}.sni`,
      `missing: ${s.listen.address} is shared with ${names.join(', ')}, which route by SNI, so every service there needs sni = [...] (["*"] for the default)`,
    );
  }
  for (const group of groups.values()) {
    const first = group[0] as ServiceConfig;
    const routes = new SniRoutes<string>();
    for (const s of group) {
      const at = `services.${s.name}`;
      if (s !== first) {
        if (
          s.acceptProxy !== first.acceptProxy ||
          s.trustedProxies.join() !== first.trustedProxies.join()
        )
          p.add(
            `${at}.accept_proxy`,
            `services sharing ${s.listen.address} read the PROXY header before the hello, so accept_proxy and trusted_proxies must match services.${first.name}'s`,
          );
        if (s.helloTimeoutMs !== first.helloTimeoutMs)
          p.add(
            `${at}.hello_timeout`,
            `services sharing ${s.listen.address} read one hello, so hello_timeout must match services.${first.name}'s`,
          );
      }
      const clash = routes.add({ target: s.name, sni: s.sni as readonly string[], alpn: s.alpn });
      if (clash)
        p.add(
          `${at}.sni`,
          `"${clash.pattern}"${clash.alpn ? ` with ALPN "${clash.alpn}"` : ''} is also routed to services.${clash.clash}: the choice would be ambiguous${clash.alpn ? '' : ' (give each an alpn list that does not overlap, or drop one)'}`,
        );
    }
  }
}
