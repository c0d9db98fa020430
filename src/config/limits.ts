/**
 * Upper bounds of config values. Durations end up in setTimeout, which fires after 1 ms
 * for anything over 2^31-1 ms; counts size maps, queues and file-descriptor use, and a
 * value past these bounds is a typo, not a plan.
 */

/** setTimeout's ceiling: 2^31-1 ms, about 24.8 days. The bound of every duration. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * retry_delay at most, and where its doubling stops (proxy/dialer.ts): a client waits
 * through the backoff, and 100 ms doubled 25 times would pass MAX_TIMER_MS.
 */
export const MAX_RETRY_DELAY_MS = 30_000;

export const LIMITS = Object.freeze({
  /**
   * connect_timeout and health.timeout: Linux gives up on an unanswered SYN after about
   * 2 minutes (tcp_syn_retries = 6), so a longer deadline never takes effect.
   */
  connectMs: 5 * 60_000,
  /** health.interval: a probe an hour apart checks nothing; jitter (x1.1) stays far from MAX_TIMER_MS. */
  healthIntervalMs: 60 * 60_000,
  /** Open sessions, waiting clients, per-source and per-backend caps: each holds a socket (a process holds ~1M fds at most). */
  connections: 1_000_000,
  /** New sessions a second, per backend or per source. */
  rate: 1_000_000,
  /** pool min_idle / max_idle, per backend: each is an open socket to that backend. */
  poolIdle: 1000,
  /**
   * health rise / fall: consecutive results. A high fall is how a service ignores
   * passive failures (dials, refills) with kind = "none", so it is bounded only to keep
   * it a plain counter.
   */
  riseFall: 1_000_000,
  /** max_retries: extra dial attempts. */
  retries: 100,
});
