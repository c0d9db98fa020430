import type { Socket } from 'node:net';
import type { BackendSet } from '../backend/backend-set.js';
import type { ConnectFailure } from '../backend/causes.js';
import type { Clock } from '../clock.js';
import type { LocalErrors } from '../local-errors.js';
import type { Logger } from '../logger.js';
import type { Upstream } from '../upstream/connector.js';
import { type BackendPool, type EvictionCause, PooledSocket } from './backend-pool.js';
import type { PoolCounters } from './counters.js';

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
   * took a socket is attached and its bytes written first. A TLS refill
   * (tls.connect, before its handshake) cost the taking client ~0.7 ms, as much
   * as the warm socket saved (the TLS pool bench); a plain connect() runs the
   * whole loopback handshake inside the syscall. Takes in one tick share one refill.
   */
  soon(p: BackendPool): void {
    if (p.refillQueued) return;
    p.refillQueued = true;
    setImmediate(refillQueued, this, p);
  }

  /** @internal For refillQueued. */
  runQueued(p: BackendPool): void {
    p.refillQueued = false;
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
    this.deps.upstream.connector.connect(p.backend, (failure, sock) => {
      p.connecting--;
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
