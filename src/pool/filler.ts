import type { Socket } from 'node:net';
import type { Backend } from '../backend/backend.js';
import type { BackendSet } from '../backend/backend-set.js';
import type { ConnectFailure } from '../backend/causes.js';
import type { Clock } from '../clock.js';
import type { LocalErrors } from '../local-errors.js';
import type { Logger } from '../logger.js';
import type { Upstream } from '../upstream/connector.js';
import { type BackendPool, type EvictionCause, PooledSocket } from './backend-pool.js';
import type { PoolCounters } from './counters.js';

/** How long a TLS pool's refill waits after a take while spare sockets remain (see PoolFiller.soon). */
export const TLS_REFILL_DEFER_MS = 5;

/** What the filler reads of its WarmPool. */
export interface FillerDeps {
  readonly counters: PoolCounters;
  readonly backends: BackendSet;
  readonly clock: Clock;
  readonly log: Logger;
  readonly localErrors: LocalErrors;
  readonly upstream: Upstream;
  /** The first refill backoff (retry_delay, at least 100 ms); doubles per failure. */
  readonly refillBaseMs: number;
  /** A pooled socket closed, failed or overflowed: the pool takes it out. */
  evict(p: BackendPool, ps: PooledSocket, cause: EvictionCause): void;
  /** A refill connected in `ms` (a latency-aware strategy's sample; see WarmPool.connectTimes). */
  connected(b: Backend, ms: number, now: number): void;
}

/**
 * Keeps each backend's pool filled (WarmPool's part that opens sockets):
 * connects up to the target, with a backoff after failures, and retires idle
 * sockets as they reach the backend's learned idle lifetime.
 */
export class PoolFiller {
  constructor(private readonly deps: FillerDeps) {}

  /** Retires what is due now (an early death showed the lifetime is shorter), and reschedules. */
  retireNow(p: BackendPool): void {
    if (p.retireTimer) clearTimeout(p.retireTimer);
    this.retireDue(p);
  }

  /**
   * Refills after the current I/O callbacks, not inside take(): the client that
   * took a socket is attached and its bytes written first. A TLS refill waits
   * longer while spare idle sockets remain (TLS_REFILL_DEFER_MS): its handshake
   * (our ClientHello and key exchange, the backend's too, on the same cores)
   * otherwise ran alongside the taking client's first request and reply, and a
   * warm hit was no faster than a dial (connect p50 0.94x pool off; deferred,
   * 0.46x: docs/performance.md). A plain connect() runs the whole loopback
   * handshake inside the syscall. Takes before the refill runs share it.
   */
  soon(p: BackendPool): void {
    const defer = this.deps.upstream.connector.tls !== null && p.idle.length > 0;
    if (p.refillQueued) {
      // The last spare went while a deferred refill waited: it runs now.
      if (!defer && p.deferredRefill) {
        clearTimeout(p.deferredRefill);
        p.deferredRefill = null;
        setImmediate(refillQueued, this, p);
      }
      return;
    }
    p.refillQueued = true;
    if (defer) {
      p.deferredRefill = setTimeout(refillQueued, TLS_REFILL_DEFER_MS, this, p);
      p.deferredRefill.unref();
    } else setImmediate(refillQueued, this, p);
  }

  /** @internal For refillQueued. */
  runQueued(p: BackendPool): void {
    p.refillQueued = false;
    p.deferredRefill = null;
    this.refill(p);
  }

  refill(p: BackendPool): void {
    if (p.closed || p.retryTimer) return;
    if (p.suspendedUntil > 0) {
      const left = p.suspendedUntil - this.deps.clock.now();
      if (left > 0) {
        this.retryIn(p, left);
        return;
      }
      p.suspendedUntil = 0;
    }
    // While backing off, one attempt at a time; otherwise fill the gap at once.
    const want = p.backoffMs > 0 ? Math.min(1, p.target) : p.target;
    while (p.idle.length + p.connecting < want && p.connecting < (p.backoffMs > 0 ? 1 : want)) {
      this.open(p);
    }
  }

  private open(p: BackendPool): void {
    p.connecting++;
    const startedAt = this.deps.clock.now();
    this.deps.upstream.connector.connect(p.backend, (failure, sock) => {
      p.connecting--;
      if (failure === null) {
        const now = this.deps.clock.now();
        this.deps.connected(p.backend, now - startedAt, now);
      }
      if (failure === null) this.opened(p, sock);
      else this.refillFailed(p, failure);
    });
  }

  private opened(p: BackendPool, sock: Socket): void {
    if (p.closed) {
      sock.destroy();
      return;
    }
    // A connect alone proves little while sockets die young: the backoff ends when one is kept.
    if (p.earlyCloses === 0) p.backoffMs = 0;
    this.deps.counters.refills++;
    this.deps.backends.reportDialSuccess(p.backend);
    const ps = new PooledSocket(sock, p.backend, this.deps.clock.now(), (x, c) =>
      this.deps.evict(p, x, c),
    );
    sock.on('data', ps.onData);
    sock.once('end', ps.onEnd);
    sock.on('error', ps.onError);
    sock.once('close', ps.onEnd);
    p.idle.push(ps);
    this.scheduleRetire(p);
    this.refill(p);
  }

  /**
   * Retires idle sockets as they reach the backend's learned idle lifetime
   * less its margin (see IdleLifetime), and refills. One timer per backend,
   * set for the oldest socket (the first: sockets queue in the order opened).
   */
  private scheduleRetire(p: BackendPool): void {
    if (p.retireTimer || p.closed || p.life.lifetimeMs === 0) return;
    const oldest = p.idle[0];
    if (!oldest) return;
    const due = oldest.openedAt + p.life.retireAtMs - this.deps.clock.now();
    p.retireTimer = setTimeout(() => this.retireDue(p), Math.max(0, due));
    p.retireTimer.unref();
  }

  private retireDue(p: BackendPool): void {
    p.retireTimer = null;
    const now = this.deps.clock.now();
    while (p.idle[0] && now - p.idle[0].openedAt >= p.life.retireAtMs)
      this.deps.evict(p, p.idle[0], 'retired');
    this.scheduleRetire(p);
  }

  private refillFailed(p: BackendPool, failure: ConnectFailure): void {
    const cause = failure.detail;
    this.deps.counters.refillFailures++;
    if (!this.deps.localErrors.claim(failure, 'pool refill', p.backend.address))
      this.deps.backends.recordDialFailure(p.backend, {
        kind: failure.kind,
        detail: `pool refill: ${cause}`,
      });
    if (p.closed || p.retryTimer) return;
    const wait = p.backOff(this.deps.refillBaseMs);
    this.deps.log.debug(
      { backend: p.backend.address, cause, retryInMs: wait },
      'pool refill failed',
    );
    this.retryIn(p, wait);
  }

  retryIn(p: BackendPool, ms: number): void {
    if (p.retryTimer) clearTimeout(p.retryTimer);
    p.retryTimer = setTimeout(() => {
      p.retryTimer = null;
      this.refill(p);
    }, ms);
    p.retryTimer.unref();
  }
}

function refillQueued(filler: PoolFiller, p: BackendPool): void {
  filler.runQueued(p);
}
