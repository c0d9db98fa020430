/*
 * How long a backend keeps an idle connection, learned from the pool's own
 * sockets. MariaDB closes a connection that has not logged in after
 * connect_timeout (10 s by default), PostgreSQL after authentication_timeout,
 * sshd after LoginGraceTime, many servers after an idle timeout: for them a
 * pre-opened socket has a lifetime shorter than idle_ttl, and one handed out
 * just before its end reaches a client as a reset.
 */

/** Deaths younger than this are no lifetime (a backend at its client limit closes at once): see WarmPool.diedYoung. */
export const LEARN_MIN_MS = 1000;
const MARGIN_MIN_MS = 250;
const MARGIN_MAX_MS = 5000;
/** Two deaths within this of each other agree on a lifetime (ms, or a tenth of it if more). */
const AGREE_MS = 250;

/**
 * The margin kept before a learned end: a quarter of the lifetime, 250 ms to
 * 5 s. It must cover the client's first reply after checkout (a MySQL client
 * answers the greeting one round trip later) and the retire timer's lag.
 */
export function marginFor(lifetimeMs: number): number {
  return Math.max(MARGIN_MIN_MS, Math.min(lifetimeMs / 4, MARGIN_MAX_MS));
}

/** One backend's learned idle lifetime. */
export class IdleLifetime {
  /** The age at which the backend closes an untouched idle connection; 0: none learned. */
  lifetimeMs = 0;
  /** Idle sockets this old are retired and never handed out; Infinity while none is learned. */
  retireAtMs = Number.POSITIVE_INFINITY;
  /** The last death's age, waiting for a second that agrees. */
  private candidateMs = 0;

  /**
   * An untouched idle socket the backend closed or reset at `ageMs`. A
   * lifetime is learned from two deaths of about the same age: an idle
   * timeout gives every socket the same age at its end, while a restart
   * ends sockets of every age at once. Only a shorter lifetime replaces a
   * learned one (a longer one cannot be seen: sockets retire before it).
   * True when the learned lifetime changed.
   */
  observe(ageMs: number): boolean {
    const prev = this.candidateMs;
    this.candidateMs = ageMs;
    if (prev === 0 || Math.abs(ageMs - prev) > Math.max(AGREE_MS, prev / 10)) return false;
    const l = Math.round(Math.min(ageMs, prev));
    if (this.lifetimeMs !== 0 && l >= this.lifetimeMs) return false;
    this.lifetimeMs = l;
    this.retireAtMs = l - marginFor(l);
    this.candidateMs = 0;
    return true;
  }
}
