import { isIPv4, isIPv6 } from 'node:net';

export interface HostPort {
  /**
   * Host in canonical form, without IPv6 brackets: an IP literal (IPv6 compressed, lower
   * case) or a DNS name (lower case, no trailing dot) resolved at dial time.
   */
  readonly host: string;
  readonly port: number;
  /** Canonical "host:port" / "[v6]:port" form, used as the address's identity. */
  readonly address: string;
}

const HOSTNAME_RE =
  /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62}))*\.?$/;

/**
 * Parses "host:port" or "[v6]:port". `minPort` is 1 for anything written in a
 * config file; 0 (an ephemeral port) is allowed only where the caller says so.
 * The result is canonical, so one backend has one identity however it is spelt
 * ("LOCALHOST.:80" is "localhost:80", "[::0:1]:80" is "[::1]:80").
 */
export function parseHostPort(value: unknown, minPort = 1): HostPort | { error: string } {
  if (typeof value !== 'string') {
    return {
      error: `expected "host:port", got ${typeof value === 'object' ? 'a table' : String(value)}`,
    };
  }
  const bad = { error: `expected "host:port", got ${JSON.stringify(value)}` };
  let host: string;
  let portText: string;
  if (value.startsWith('[')) {
    const close = value.indexOf(']');
    if (close < 0 || value[close + 1] !== ':') return bad;
    host = value.slice(1, close);
    portText = value.slice(close + 2);
    if (!isIPv6(host))
      return { error: `expected an IPv6 address inside [], got ${JSON.stringify(value)}` };
    // An IPv4-mapped address is the IPv4 endpoint it names, as a client's key is
    // (proxy/ip-text.ts clientKey): "[::ffff:127.0.0.1]:80" is "127.0.0.1:80".
    host = unmapped(canonicalIPv6(host));
  } else {
    const colon = value.lastIndexOf(':');
    if (colon <= 0) return bad;
    host = value.slice(0, colon);
    portText = value.slice(colon + 1);
    if (host.includes(':')) {
      return {
        error: `an IPv6 address needs brackets, as "[${host}]:${portText}", got ${JSON.stringify(value)}`,
      };
    }
    if (!HOSTNAME_RE.test(host))
      return { error: `invalid host ${JSON.stringify(host)} in ${JSON.stringify(value)}` };
    const written = host;
    host = host.toLowerCase().replace(/\.$/, '');
    // A name whose last label is all digits is no DNS name (RFC 3696 §2), and the
    // resolver would read it as a number (inet_aton: "127.1" is 127.0.0.1), so a
    // mistyped IPv4 address such as 999.999.999.999 must not pass as a host name.
    if (!isIPv4(host) && /(?:^|\.)\d+$/.test(host)) {
      return {
        error: `invalid host ${JSON.stringify(written)} in ${JSON.stringify(value)}: not an IPv4 address (four numbers 0-255, no leading zeros), and a DNS name cannot end in a number`,
      };
    }
  }
  if (!/^\d{1,5}$/.test(portText)) return bad;
  const port = Number(portText);
  if (port < minPort || port > 65535) {
    return { error: `port must be ${minPort}-65535, got ${portText} in ${JSON.stringify(value)}` };
  }
  return { host, port, address: formatHostPort(host, port) };
}

/** The WHATWG URL form of an IPv6 literal (compressed, lower case); a zone ("%eth0") is kept as written. */
function canonicalIPv6(ip: string): string {
  const pct = ip.indexOf('%');
  const addr = pct < 0 ? ip : ip.slice(0, pct);
  try {
    return new URL(`http://[${addr}]/`).hostname.slice(1, -1) + (pct < 0 ? '' : ip.slice(pct));
  } catch {
    return ip.toLowerCase();
  }
}

/** "::ffff:7f00:1" (the WHATWG form of ::ffff:127.0.0.1) as "127.0.0.1"; anything else as it is. */
function unmapped(ip: string): string {
  const m = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(ip);
  if (!m) return ip;
  const hi = Number.parseInt(m[1] as string, 16);
  const lo = Number.parseInt(m[2] as string, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/**
 * The literal endpoints a host name is known to be without asking DNS
 * ("localhost" is 127.0.0.1 and ::1): a backend under such a name may not be
 * added beside one of them. Names that need DNS are checked where a lookup
 * can wait (the admin API). Empty for IP literals and other names.
 */
export function literalTwins(host: string, port: number): string[] {
  if (host !== 'localhost') return [];
  return [formatHostPort('127.0.0.1', port), formatHostPort('::1', port)];
}

/**
 * A backend for an address a resolver gave (discovery): keyed as a written
 * one would be, so "::ffff:10.0.0.9" from an AAAA record is 10.0.0.9.
 */
export function endpointOf(ip: string, port: number): HostPort {
  const hp = parseHostPort(formatHostPort(ip, port), 0);
  return 'error' in hp ? { host: ip, port, address: formatHostPort(ip, port) } : hp;
}

/** 127.0.0.0/8, ::1 or localhost. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return isIPv4(host) && host.startsWith('127.');
}

export function formatHostPort(host: string, port: number): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

/** What a listen host takes on its port, as far as can be known without DNS. */
interface Binds {
  /** "::": Node binds it dual-stack (IPV6_V6ONLY off), so it takes every address of both families. */
  readonly all: boolean;
  /** "0.0.0.0": every IPv4 address. */
  readonly allV4: boolean;
  /** The IP literals it may bind. */
  readonly ips: readonly string[];
}

function binds(host: string): Binds {
  if (host === '::') return { all: true, allV4: true, ips: [] };
  if (host === '0.0.0.0') return { all: false, allV4: true, ips: [] };
  // Node binds the first address the resolver gives: 127.0.0.1 or ::1, so either may clash.
  if (host === 'localhost') return { all: false, allV4: false, ips: ['127.0.0.1', '::1'] };
  if (isIPv4(host) || isIPv6(host)) return { all: false, allV4: false, ips: [host] };
  // Another DNS name: its addresses are unknown until start, so only the same name or
  // "::" (which takes any address it could resolve to) is a sure clash.
  return { all: false, allV4: false, ips: [] };
}

/**
 * Whether two listen addresses would fight over one socket (EADDRINUSE at start), decided
 * without DNS: the same host, "localhost" with 127.0.0.1 or ::1, "0.0.0.0" with any IPv4
 * address, "::" with anything. Port 0 (OS-chosen) never clashes.
 */
export function listensOverlap(a: HostPort, b: HostPort): boolean {
  // A passed socket ("systemd:NAME", "fd:N"; config/listen.ts) has no host: only its own name clashes.
  if (a.host === '' || b.host === '') return a.address === b.address;
  if (a.port !== b.port || a.port === 0) return false;
  if (a.host === b.host) return true;
  const x = binds(a.host);
  const y = binds(b.host);
  if (x.all || y.all) return true;
  if (x.allV4 && (y.allV4 || y.ips.some((ip) => isIPv4(ip)))) return true;
  if (y.allV4 && x.ips.some((ip) => isIPv4(ip))) return true;
  return x.ips.some((ip) => y.ips.includes(ip));
}
