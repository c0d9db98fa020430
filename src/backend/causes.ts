import { LOCAL_ERRNO } from '../errno.js';

/**
 * Bounded label sets for /metrics: a dial's or a probe's cause text (an
 * errno code such as "ECONNREFUSED", "connect timeout 2000ms", "tls: …",
 * "pool refill: ECONNRESET", an HTTP status) mapped to a few words, so a
 * metric has a fixed number of series whatever backends answer.
 */
export const DIAL_CAUSES = ['refused', 'timeout', 'reset', 'tls', 'local', 'other'] as const;
export type DialCause = (typeof DIAL_CAUSES)[number];

/** A failed connect, typed where it happened: its class, and its text for logs and the API. */
export interface ConnectFailure {
  readonly kind: DialCause;
  /** "ECONNREFUSED", "connect timeout 2000ms", "tls: certificate has expired", "pool refill: ECONNRESET". */
  readonly detail: string;
}

/** The class of a socket error's errno code. */
export function errnoKind(code: string): DialCause {
  if (code === 'ECONNREFUSED') return 'refused';
  if (code === 'ETIMEDOUT') return 'timeout';
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNABORTED') return 'reset';
  if (LOCAL_ERRNO.has(code)) return 'local';
  return 'other';
}

export const PROBE_CAUSES = ['refused', 'timeout', 'reset', 'tls', 'bad-reply', 'other'] as const;
export type ProbeCause = (typeof PROBE_CAUSES)[number];

/** The errno code or own text at the start of a cause ("pool refill: " is only where it happened). */
function head(cause: string): string {
  return cause.startsWith('pool refill: ') ? cause.slice(13) : cause;
}

/** A transport-level class, or null when the cause is none of them. */
function transport(c: string): 'refused' | 'timeout' | 'reset' | 'tls' | 'local' | null {
  if (c === 'ECONNREFUSED') return 'refused';
  if (c === 'ETIMEDOUT' || /^[a-z ]*timeout\b/.test(c) || c.startsWith('timeout')) return 'timeout';
  if (c === 'ECONNRESET' || c === 'EPIPE' || c === 'ECONNABORTED') return 'reset';
  if (c.startsWith('tls')) return 'tls';
  if (LOCAL_ERRNO.has(c)) return 'local';
  return null;
}

/**
 * A failed probe's class: the transport ones as for dials; anything the
 * backend answered that was not what the check wanted (an HTTP 503, a
 * Redis replica, an unexpected greeting) is "bad-reply".
 */
export function probeCauseOf(detail: string): ProbeCause {
  const t = transport(head(detail));
  if (t !== null) return t === 'local' ? 'other' : t;
  // Errno codes are upper case (EHOSTUNREACH, ENOTFOUND): the network, not the backend's reply.
  return /^E[A-Z]+$/.test(detail) ? 'other' : 'bad-reply';
}

/** A record with every cause at zero, so each series exists from the first scrape. */
export function zeroCounts<K extends string>(keys: readonly K[]): Record<K, number> {
  return Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;
}
