import type { Logger } from '../logger.js';
import type { BackendPool } from './backend-pool.js';
import { LEARN_MIN_MS } from './idle-lifetime.js';

/*
 * What an idle socket's death says about its backend: the policy the pool
 * follows when a backend closes, resets or floods a socket no client took.
 */

/** Young deaths in a row after which a backend's pool stops pre-opening for a while. */
const SUSPEND_AFTER = 8;
const SUSPEND_MS = 5 * 60_000;

/** Causes of an idle socket's death that, young, say the backend will not keep idle connections. */
export type EarlyCause = 'closed' | 'error' | 'overflow';

/** What the verdict acts through, for one backend's pool. */
export interface DeathContext {
  readonly counters: { refillFailures: number; earlyCloses: Record<EarlyCause, number> };
  readonly log: Logger;
  readonly now: number;
  /** The first refill backoff. */
  readonly refillBaseMs: number;
  /** An idle socket that dies before this age died young. */
  readonly youngMs: number;
  /** Refill after `ms` (replacing a wait under way). */
  retryIn(ms: number): void;
  /** Retires the sockets now past the (new) retirement age, and sets the timer for the next. */
  retireNow(): void;
}

/**
 * An untouched idle socket of `p` died by `cause` at `ageMs`. Young (under
 * 1 s, and under youngMs): a backend at its own connection limit, with a
 * very short idle timeout, or a greeting over the cap. Every connect
 * succeeds there, so without a backoff the pool would reconnect as fast as
 * the loop turns: it counts as a refill failure (backoff, a warning, a
 * metric); after SUSPEND_AFTER in a row the backend's pool stops
 * pre-opening for SUSPEND_MS, and its clients dial fresh meanwhile. Not a
 * health signal: such a backend serves real clients well. Older: an idle
 * lifetime to learn (see IdleLifetime). True when it died young (the
 * backoff decided when to refill).
 */
export function idleDeath(
  c: DeathContext,
  p: BackendPool,
  cause: EarlyCause,
  ageMs: number,
): boolean {
  if (ageMs < c.youngMs && (ageMs < LEARN_MIN_MS || cause === 'overflow')) {
    diedYoung(c, p, cause, ageMs);
    return true;
  }
  if (cause !== 'overflow' && ageMs >= LEARN_MIN_MS) learnLifetime(c, p, ageMs);
  return false;
}

function diedYoung(c: DeathContext, p: BackendPool, cause: EarlyCause, ageMs: number): void {
  c.counters.refillFailures++;
  c.counters.earlyCloses[cause]++;
  p.earlyCloses++;
  const wait = p.backOff(c.refillBaseMs);
  const backend = p.backend.address;
  const afterMs = Math.round(ageMs);
  if (p.earlyCloses >= SUSPEND_AFTER) {
    p.suspendedUntil = c.now + SUSPEND_MS;
    p.earlyCloses = 0;
    c.log.warn(
      { backend, cause, afterMs, suspendedMs: SUSPEND_MS },
      `backend closes idle connections after ~${afterMs} ms; its pool stops pre-opening for ${SUSPEND_MS / 60_000} min (clients dial fresh)`,
    );
    c.retryIn(SUSPEND_MS);
    return;
  }
  const held = p.warning.pass();
  if (held >= 0)
    c.log.warn(
      { backend, cause, afterMs, retryInMs: wait, alsoEarly: held },
      `backend closes idle connections after ~${afterMs} ms; pool refill backs off (idle_ttl below that avoids it)`,
    );
  c.retryIn(wait);
}

/** An age that looks like an idle timeout: said once per learned figure, and sockets past the new age retire. */
function learnLifetime(c: DeathContext, p: BackendPool, ageMs: number): void {
  if (!p.life.observe(ageMs)) return;
  const { lifetimeMs, retireAtMs } = p.life;
  c.log.warn(
    { backend: p.backend.address, lifetimeMs, retireAtMs },
    `backend closes idle connections after ~${lifetimeMs} ms; pooled sockets to it now retire at ${retireAtMs} ms (pool.idle_ttl below ${retireAtMs} ms says so up front)`,
  );
  c.retireNow();
}
