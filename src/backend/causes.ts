import { LOCAL_ERRNO } from '../errno.js';

/**
 * Bounded label sets for /metrics: a dial's or a probe's failure, classed
 * where it happened (a connect's outcome, a socket's errno code, a reply that
 * was not what the check wanted) in a few words, so a metric has a fixed
 * number of series whatever backends answer.
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

/**
 * A failed probe's class: the transport ones as for dials; anything the
 * backend answered that was not what the check wanted (an HTTP 503, a Redis
 * replica, an unexpected greeting, a close before the reply) is "bad-reply".
 */
export const PROBE_CAUSES = ['refused', 'timeout', 'reset', 'tls', 'bad-reply', 'other'] as const;
export type ProbeCause = (typeof PROBE_CAUSES)[number];

/** A probe whose connect failed: the connect's own class ("local", the balancer's own, counts as "other"). */
export function probeCauseOfConnect(f: ConnectFailure): ProbeCause {
  return f.kind === 'local' ? 'other' : f.kind;
}

/**
 * A probe whose socket failed mid-check: an errno code's class, as for a
 * connect; any other error (a TLS alert, a parser's) is the reply's fault.
 */
export function probeCauseOfError(code: string | undefined): ProbeCause {
  if (code === undefined || !/^E[A-Z]+$/.test(code)) return 'bad-reply';
  const kind = errnoKind(code);
  return kind === 'local' ? 'other' : kind;
}

/** A record with every cause at zero, so each series exists from the first scrape. */
export function zeroCounts<K extends string>(keys: readonly K[]): Record<K, number> {
  return Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;
}
