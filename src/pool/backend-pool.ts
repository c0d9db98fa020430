import type { Socket } from 'node:net';
import type { Backend } from '../backend/backend.js';
import type { Clock } from '../clock.js';
import { LogThrottle } from '../log-throttle.js';
import { IdleLifetime } from './idle-lifetime.js';

/** Bytes a backend may send to an idle pooled socket (a greeting) before we give up on it. */
export const MAX_EARLY_BYTES = 64 * 1024;
const MAX_REFILL_BACKOFF_MS = 30_000;

export type EvictionCause =
  | 'closed'
  | 'error'
  | 'expired'
  /** Retired before the backend's learned idle lifetime ends (see IdleLifetime). */
  | 'retired'
  | 'overflow'
  | 'backend-down'
  | 'shutdown';

/** A connected socket waiting in a pool, with what the backend sent it so far. */
export class PooledSocket {
  readonly early: Buffer[] = [];
  earlyBytes = 0;
  /** Listeners bound once per socket; removed by `detach` when a session takes it. */
  readonly onData: (chunk: Buffer) => void;
  readonly onEnd: () => void;
  readonly onError: () => void;
  constructor(
    readonly socket: Socket,
    readonly backend: Backend,
    readonly openedAt: number,
    evict: (ps: PooledSocket, cause: EvictionCause) => void,
  ) {
    this.onData = (chunk) => {
      this.early.push(chunk);
      this.earlyBytes += chunk.length;
      if (this.earlyBytes > MAX_EARLY_BYTES) evict(this, 'overflow');
    };
    this.onEnd = () => evict(this, 'closed');
    this.onError = () => evict(this, 'error');
  }
}

/** One backend's idle sockets and refill state. */
export class BackendPool {
  readonly idle: PooledSocket[] = [];
  connecting = 0;
  /** Idle sockets wanted now: min_idle, raised toward max_idle by misses, decaying back. */
  target: number;
  missesSinceReap = 0;
  /** Refill backoff: 0 while the backend takes and keeps connections. */
  backoffMs = 0;
  retryTimer: NodeJS.Timeout | null = null;
  /** A refill is queued for the next check phase (see WarmPool.refillSoon). */
  refillQueued = false;
  /** The queued refill's timer when it was deferred (a TLS pool with spares left; see WarmPool.refillSoon). */
  deferredRefill: NodeJS.Timeout | null = null;
  closed = false;
  /** Idle sockets in a row that died young (closed, reset or flooded before use). */
  earlyCloses = 0;
  /** Clock ms until which this backend's pool pre-opens nothing (0: not suspended). */
  suspendedUntil = 0;
  /** How long the backend keeps an idle connection, once learned. */
  readonly life = new IdleLifetime();
  /** Fires when the oldest idle socket reaches life.retireAtMs. */
  retireTimer: NodeJS.Timeout | null = null;
  /** The "closes idle connections" warning, at most once per interval per backend. */
  readonly warning: LogThrottle;

  constructor(
    readonly backend: Backend,
    minIdle: number,
    clock: Clock,
  ) {
    this.target = minIdle;
    this.warning = new LogThrottle(WARN_EVERY_MS, clock);
  }

  /** The next refill waits longer: `baseMs` at first, then twice the last wait, up to 30 s. */
  backOff(baseMs: number): number {
    this.backoffMs =
      this.backoffMs === 0 ? baseMs : Math.min(this.backoffMs * 2, MAX_REFILL_BACKOFF_MS);
    return this.backoffMs;
  }

  /** The backend kept a connection (a client took one, or one outlived youth): refill at full speed again. */
  proven(): void {
    this.earlyCloses = 0;
    this.backoffMs = 0;
    this.suspendedUntil = 0;
    // A backoff or suspension wait under way ends too; the caller refills next.
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }
}

/** One "closes idle connections" warning per backend per minute. */
const WARN_EVERY_MS = 60_000;
