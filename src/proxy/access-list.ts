import { BlockList, isIPv4, isIPv6 } from 'node:net';

/** A BlockList of CIDRs ("addr/prefix", validated by the schema); routes match sources with it too. */
export function blockListOf(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const c of cidrs) {
    const [addr, bits] = c.split('/') as [string, string];
    const prefix = Number(bits);
    // "::ffff:10.0.0.0/104" is an IPv4 rule written as IPv6: clients are matched as IPv4 (see clientKey).
    const v4 = addr.toLowerCase().startsWith('::ffff:') ? addr.slice(7) : null;
    if (v4 !== null && isIPv4(v4) && prefix >= 96) list.addSubnet(v4, prefix - 96, 'ipv4');
    else list.addSubnet(addr, prefix, isIPv6(addr) ? 'ipv6' : 'ipv4');
  }
  return list;
}

/**
 * A service's `allow` and `deny` lists (nginx stream allow/deny, Traefik
 * ipAllowList): deny wins; a non-empty allow list admits only its members.
 * Built once per config; a service with neither list has none (null), so its
 * sessions pay nothing.
 */
export class AccessList {
  private readonly allow: BlockList | null;
  private readonly deny: BlockList | null;

  private constructor(allow: readonly string[], deny: readonly string[]) {
    this.allow = allow.length > 0 ? blockListOf(allow) : null;
    this.deny = deny.length > 0 ? blockListOf(deny) : null;
  }

  static of(allow: readonly string[], deny: readonly string[]): AccessList | null {
    return allow.length === 0 && deny.length === 0 ? null : new AccessList(allow, deny);
  }

  /** `ip`: a client key (an IPv4-mapped address already unmapped). Anything not an IP is refused. */
  admits(ip: string): boolean {
    const family = isIPv4(ip) ? 'ipv4' : isIPv6(ip) ? 'ipv6' : null;
    if (family === null) return false;
    if (this.deny?.check(ip, family)) return false;
    return this.allow === null || this.allow.check(ip, family);
  }
}
