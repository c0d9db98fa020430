import { isIPv4, isIPv6, SocketAddress } from 'node:net';

/**
 * The RFC 5952 text of an IP literal, or null for anything that is not a
 * plain IPv4 or IPv6 address: zone ids ("fe80::1%eth0") included, since no
 * peer's address on the wire has one and our PROXY encoder cannot carry it.
 * net.SocketAddress does the canonical form (lower case, longest zero run
 * compressed, "::ffff:1.2.3.4" for mapped addresses).
 */
export function canonicalIp(text: string, family: 4 | 6): string | null {
  if (family === 4) return isIPv4(text) ? text : null;
  if (text.includes('%') || !isIPv6(text)) return null;
  try {
    return new SocketAddress({ address: text, family: 'ipv6' }).address;
  } catch {
    return null;
  }
}

/**
 * A client's identity: an IPv4-mapped IPv6 address as the IPv4 address it
 * is, so a client reached over a dual-stack listener, or named by a PROXY
 * header in either form, is one key for ip-hash and the per-source limits.
 * Input is canonical already (a socket's address, or canonicalIp's output).
 */
export function clientKey(addr: string): string {
  if (addr.startsWith('::ffff:')) {
    const v4 = addr.slice(7);
    if (isIPv4(v4)) return v4;
  }
  return addr;
}
