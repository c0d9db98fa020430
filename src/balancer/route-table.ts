import { type BlockList, isIPv4, isIPv6 } from 'node:net';
import type { RouteConfig } from '../config/route.js';
import { blockListOf } from '../proxy/access-list.js';

/** DialAttempt.route before a routed pick matched it. */
export const UNROUTED = -2;

/** What a route is matched on, read from the dial's requester (see DialAttempt). */
export interface RouteInput {
  /** The client's address as a key (after a trusted PROXY header). */
  readonly clientIp: string;
  /** The local port it connected to (0: none, e.g. an embedded connect()). */
  readonly localPort: number;
  /** From its ClientHello, when the service reads one. */
  readonly serverName: string | null;
  readonly alpn: readonly string[] | null;
}

interface Compiled {
  readonly name: string;
  readonly source: BlockList | null;
  readonly port: readonly number[] | null;
  readonly sni: readonly string[] | null;
  readonly alpn: readonly string[] | null;
}

/**
 * A service's routes, compiled once per config: CIDRs into BlockLists, so a
 * match is a few lookups and allocates nothing. `match` gives the index of
 * the first route whose every condition holds, or -1.
 */
export class RouteTable {
  private readonly rules: readonly Compiled[];

  constructor(routes: readonly RouteConfig[]) {
    this.rules = routes.map((r) => ({
      name: r.name,
      source: r.source === null ? null : blockListOf(r.source),
      port: r.port,
      sni: r.sni,
      alpn: r.alpn,
    }));
  }

  match(x: RouteInput): number {
    for (let i = 0; i < this.rules.length; i++) if (matches(this.rules[i] as Compiled, x)) return i;
    return -1;
  }
}

function matches(r: Compiled, x: RouteInput): boolean {
  if (r.port !== null && !r.port.includes(x.localPort)) return false;
  if (r.source !== null) {
    const ip = x.clientIp;
    const family = isIPv4(ip) ? 'ipv4' : isIPv6(ip) ? 'ipv6' : null;
    if (family === null || !r.source.check(ip, family)) return false;
  }
  if (r.sni !== null && !sniMatches(r.sni, x.serverName)) return false;
  if (r.alpn !== null) {
    const offered = x.alpn;
    if (offered === null) return false;
    let any = false;
    for (let i = 0; i < offered.length && !any; i++) any = r.alpn.includes(offered[i] as string);
    if (!any) return false;
  }
  return true;
}

/** Exact names, one-label "*.domain" wildcards, "*" (any name, or none): as sni = [...] reads them. */
function sniMatches(patterns: readonly string[], name: string | null): boolean {
  for (const p of patterns) {
    if (p === '*') return true;
    if (name === null) continue;
    if (p === name) return true;
    if (p.startsWith('*.')) {
      const dot = name.indexOf('.');
      if (dot > 0 && name.length - dot - 1 === p.length - 2 && name.endsWith(p.slice(1)))
        return true;
    }
  }
  return false;
}
