import type { Socket } from 'node:net';
import type { Backend } from '../backend/backend.js';
import type { BackendSet } from '../backend/backend-set.js';
import type { ConnectFailure } from '../backend/causes.js';
import type { Clock } from '../clock.js';
import type { PoolConfig } from '../config/schema.js';
import type { LocalErrors } from '../local-errors.js';
import type { Logger } from '../logger.js';
import type { Upstream } from '../upstream/connector.js';

import { BackendPool, type EvictionCause, PooledSocket } from './backend-pool.js';
import { type EarlyCause, idleDeath } from './idle-deaths.js';

export type { EvictionCause } from './backend-pool.js';

/** How long a TLS pool's refill waits after a take while spare sockets remain (see refillSoon). */
export const TLS_REFILL_DEFER_MS = 5;
export { MAX_EARLY_BYTES, PooledSocket } from './backend-pool.js';

/** Plain counters, read by metrics at scrape time. */
export interface PoolCounters {
  hits: number;
  misses: number;
  refills: number;
  refillFailures: number;
  evictions: Record<EvictionCause, number>;
  /** Idle sockets the backend closed, reset or flooded young (see WarmPool); counted as refill failures too. */
  earlyCloses: Record<EarlyCause, number>;
}

/** What a warm pool is made of (one per service, remade when its settings change). */
export interface WarmPoolOptions {
  readonly cfg: PoolConfig;
  readonly backends: BackendSet;
  /** The first refill backoff (retry_delay, at least 100 ms); doubles per failure. */
  readonly refillBaseMs: number;
  readonly log: Logger;
  readonly clock: Clock;
  readonly localErrors: LocalErrors;
  /**
   * Who holds the service's connector (connect_timeout, backend_tls: with it,
   * idle sockets are handshaken TLS sockets), read at each refill.
   */
  readonly upstream: Upstream;
}

/**
 * Pre-opened backend connections, so a client skips the backend connect
 * (and, with backend_tls, the TLS handshake: a socket joins the pool only
 * once its handshake completed and the certificate verified).
 *
 * - Idle sockets are read while they wait: a FIN, RST or error evicts at once,
 *   so only live sockets are handed out; bytes a server-first backend sends
 *   (a MySQL greeting, an SMTP banner) are held, up to MAX_EARLY_BYTES, for
 *   the client that takes the socket.
 * - Only healthy, non-draining backends keep a pool. Refill runs in the
 *   background after every checkout or eviction; while a backend refuses,
 *   refill backs off exponentially (one attempt at a time) and each failure
 *   is a passive health signal.
 * - `idle_ttl` bounds an idle socket's age, so a backend's or middlebox's own
 *   idle timeout never hands a client a dead socket.
 */
export class WarmPool {
  readonly counters: PoolCounters = {
    hits: 0,
    misses: 0,
    refills: 0,
    refillFailures: 0,
    evictions: {
      closed: 0,
      error: 0,
      expired: 0,
      retired: 0,
      overflow: 0,
      'backend-down': 0,
      shutdown: 0,
    },
    earlyCloses: { closed: 0, error: 0, overflow: 0 },
  };
  private readonly pools = new Map<Backend, BackendPool>();
  private readonly reaper: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly onUp = (b: Backend): void => this.ensure(b);
  private readonly onGone = (b: Backend): void => this.drop(b, 'backend-down');
  private readonly onState = (): void => this.syncEligibility();

  private readonly cfg: PoolConfig;
  private readonly backends: BackendSet;
  /** The first refill backoff (retry_delay, at least 100 ms); doubles per failure. */
  readonly refillBaseMs: number;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly localErrors: LocalErrors;
  private readonly upstream: Upstream;

  constructor(opts: WarmPoolOptions) {
    this.cfg = opts.cfg;
    this.backends = opts.backends;
    this.refillBaseMs = opts.refillBaseMs;
    this.log = opts.log;
    this.clock = opts.clock;
    this.localErrors = opts.localErrors;
    this.upstream = opts.upstream;
    const { cfg, backends } = opts;
    if (cfg.minIdle === 0) return;
    backends.on('up', this.onUp);
    backends.on('down', this.onGone);
    backends.on('removed', this.onGone);
    backends.on('state', this.onState);
    // Reap often enough that no socket outlives idle_ttl by more than a quarter of it.
    this.reaper = setInterval(
      () => this.reap(),
      Math.max(50, Math.min(this.cfg.idleTtlMs / 4, 5000)),
    );
    this.reaper.unref();
  }

  get enabled(): boolean {
    return this.cfg.minIdle > 0;
  }

  /** Fills every eligible backend's pool; call once the service starts. */
  start(): void {
    if (!this.enabled) return;
    for (const b of this.backends.all) this.ensure(b);
  }

  /** Idle sockets held now, across backends. */
  get idleCount(): number {
    let n = 0;
    for (const p of this.pools.values()) n += p.idle.length;
    return n;
  }

  /** Connects under way to refill `b`'s pool. */
  connectingFor(b: Backend): number {
    return this.pools.get(b)?.connecting ?? 0;
  }

  idleFor(b: Backend): number {
    return this.pools.get(b)?.idle.length ?? 0;
  }

  /** How long `b` keeps an idle connection, as learned (ms; 0: nothing learned). */
  lifetimeFor(b: Backend): number {
    return this.pools.get(b)?.life.lifetimeMs ?? 0;
  }

  /**
   * A live idle socket to `b`, or null (a miss). The caller owns the socket
   * and must attach its own listeners before calling `detach(ps)`.
   */
  take(b: Backend): PooledSocket | null {
    if (!this.enabled) return null;
    const p = this.pools.get(b);
    // Oldest first: the order the backend accepted them. A server that serves one connection at
    // a time (iperf3) reads the first socket it accepted; newest first handed the client another.
    let ps = p?.idle.shift();
    // Listeners evict on FIN/RST/error as they happen; this catches a socket destroyed some other
    // way, and one within the margin of the backend's learned idle lifetime (its timer lags).
    while (p && ps) {
      if (ps.socket.destroyed || !ps.socket.readable) this.counters.evictions.closed++;
      else if (this.clock.now() - ps.openedAt >= p.life.retireAtMs)
        this.counters.evictions.retired++;
      else break;
      ps.socket.removeListener('close', ps.onEnd);
      ps.socket.destroy();
      ps = p.idle.shift();
    }
    if (!p || !ps) {
      this.counters.misses++;
      if (p) {
        p.missesSinceReap++;
        if (p.target < this.cfg.maxIdle) p.target++;
        this.refillSoon(p);
      }
      return null;
    }
    this.counters.hits++;
    // Only a socket that outlived youth proves the backend keeps them: a young one may
    // just not have been closed yet (a backend at its own client limit).
    if (this.clock.now() - ps.openedAt >= this.youngMs) p.proven();
    this.refillSoon(p);
    return ps;
  }

  /** Detaches the pool's listeners from a taken socket; the caller's are already on it. */
  detach(ps: PooledSocket): void {
    const s = ps.socket;
    s.removeListener('data', ps.onData);
    s.removeListener('end', ps.onEnd);
    s.removeListener('error', ps.onError);
    s.removeListener('close', ps.onEnd);
  }

  /** Closes idle sockets older than idle_ttl (they are replaced by refill), and shrinks burst targets. */
  reap(): void {
    const now = this.clock.now();
    const cutoff = now - this.cfg.idleTtlMs;
    for (const p of this.pools.values()) {
      if (p.earlyCloses > 0 && p.idle.some((ps) => now - ps.openedAt >= this.youngMs)) p.proven();
      for (let i = p.idle.length - 1; i >= 0; i--) {
        const ps = p.idle[i] as PooledSocket;
        if (ps.openedAt <= cutoff) this.evict(p, ps, 'expired');
        else if (now - ps.openedAt >= p.life.retireAtMs) this.evict(p, ps, 'retired');
      }
      if (p.missesSinceReap === 0 && p.target > this.cfg.minIdle) p.target--;
      p.missesSinceReap = 0;
      this.refill(p);
    }
  }

  /** Closes every idle socket and stops refilling; the pool is done. */
  close(): void {
    this.closed = true;
    this.backends.off('up', this.onUp);
    this.backends.off('down', this.onGone);
    this.backends.off('removed', this.onGone);
    this.backends.off('state', this.onState);
    if (this.reaper) clearInterval(this.reaper);
    for (const b of [...this.pools.keys()]) this.drop(b, 'shutdown');
  }

  private eligible(b: Backend): boolean {
    return !this.closed && b.healthy && !b.draining && !b.disabled && !b.removed;
  }

  private ensure(b: Backend): void {
    if (!this.enabled || !this.eligible(b)) return;
    let p = this.pools.get(b);
    if (!p) {
      p = new BackendPool(b, this.cfg.minIdle, this.clock);
      this.pools.set(b, p);
    }
    this.refill(p);
  }

  private syncEligibility(): void {
    for (const b of this.backends.all) {
      if (this.eligible(b)) this.ensure(b);
      else if (this.pools.has(b)) this.drop(b, 'backend-down');
    }
  }

  private drop(b: Backend, cause: EvictionCause): void {
    const p = this.pools.get(b);
    if (!p) return;
    p.closed = true;
    if (p.retryTimer) clearTimeout(p.retryTimer);
    if (p.retireTimer) clearTimeout(p.retireTimer);
    if (p.deferredRefill) clearTimeout(p.deferredRefill);
    while (p.idle.length > 0) this.evict(p, p.idle[p.idle.length - 1] as PooledSocket, cause);
    this.pools.delete(b);
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
  private refillSoon(p: BackendPool): void {
    const defer = this.upstream.connector.tls !== null && p.idle.length > 0;
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
  runQueuedRefill(p: BackendPool): void {
    p.refillQueued = false;
    p.deferredRefill = null;
    this.refill(p);
  }

  private refill(p: BackendPool): void {
    if (p.closed || p.retryTimer) return;
    if (p.suspendedUntil > 0) {
      const left = p.suspendedUntil - this.clock.now();
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
    this.upstream.connector.connect(p.backend, (failure, sock) => {
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
    this.counters.refills++;
    this.backends.reportDialSuccess(p.backend);
    const ps = new PooledSocket(sock, p.backend, this.clock.now(), (x, c) => this.evict(p, x, c));
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
    const due = oldest.openedAt + p.life.retireAtMs - this.clock.now();
    p.retireTimer = setTimeout(() => this.retireDue(p), Math.max(0, due));
    p.retireTimer.unref();
  }

  private retireDue(p: BackendPool): void {
    p.retireTimer = null;
    const now = this.clock.now();
    while (p.idle[0] && now - p.idle[0].openedAt >= p.life.retireAtMs)
      this.evict(p, p.idle[0], 'retired');
    this.scheduleRetire(p);
  }

  private refillFailed(p: BackendPool, failure: ConnectFailure): void {
    const cause = failure.detail;
    this.counters.refillFailures++;
    if (!this.localErrors.claim(failure, 'pool refill', p.backend.address))
      this.backends.recordDialFailure(p.backend, {
        kind: failure.kind,
        detail: `pool refill: ${cause}`,
      });
    if (p.closed || p.retryTimer) return;
    const wait = p.backOff(this.refillBaseMs);
    this.log.debug({ backend: p.backend.address, cause, retryInMs: wait }, 'pool refill failed');
    this.retryIn(p, wait);
  }

  private retryIn(p: BackendPool, ms: number): void {
    if (p.retryTimer) clearTimeout(p.retryTimer);
    p.retryTimer = setTimeout(() => {
      p.retryTimer = null;
      this.refill(p);
    }, ms);
    p.retryTimer.unref();
  }

  private evict(p: BackendPool, ps: PooledSocket, cause: EvictionCause): void {
    const i = p.idle.indexOf(ps);
    if (i < 0) return;
    p.idle.splice(i, 1);
    this.counters.evictions[cause]++;
    // The error listener stays: a destroyed socket must never throw an unhandled 'error'.
    ps.socket.removeListener('close', ps.onEnd);
    ps.socket.destroy();
    if (cause === 'shutdown' || cause === 'backend-down') return;
    if (cause === 'closed' || cause === 'error' || cause === 'overflow') {
      const now = this.clock.now();
      const c = {
        counters: this.counters,
        log: this.log,
        now,
        refillBaseMs: this.refillBaseMs,
        youngMs: this.youngMs,
        retryIn: (ms: number) => this.retryIn(p, ms),
        retireNow: () => {
          if (p.retireTimer) clearTimeout(p.retireTimer);
          this.retireDue(p);
        },
      };
      if (idleDeath(c, p, cause, now - ps.openedAt)) return;
    }
    // It lived long enough to show the backend keeps idle connections.
    p.proven();
    this.refill(p);
  }

  /** An idle socket that dies before this age died young: half of idle_ttl, 100 ms to 5 s. */
  private get youngMs(): number {
    return Math.max(100, Math.min(this.cfg.idleTtlMs / 2, 5000));
  }
}

function refillQueued(pool: WarmPool, p: BackendPool): void {
  pool.runQueuedRefill(p);
}
