import { isIPv4, isIPv6 } from 'node:net';

export interface HostPort {
  /** Host as written, without IPv6 brackets: an IP literal or a DNS name resolved at dial time. */
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
  }
  if (!/^\d{1,5}$/.test(portText)) return bad;
  const port = Number(portText);
  if (port < minPort || port > 65535) {
    return { error: `port must be ${minPort}-65535, got ${portText} in ${JSON.stringify(value)}` };
  }
  return { host, port, address: formatHostPort(host, port) };
}

/** 127.0.0.0/8, ::1 or localhost. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return isIPv4(host) && host.startsWith('127.');
}

export function formatHostPort(host: string, port: number): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}
