import type { Backend } from '../backend/backend.js';
import type { BackendSet } from '../backend/backend-set.js';
import type { Clock } from '../clock.js';
import type { PoolConfig } from '../config/schema.js';
import type { LocalErrors } from '../local-errors.js';
import type { Logger } from '../logger.js';
import type { Upstream } from '../upstream/connector.js';

import { BackendPool, type EvictionCause, type PooledSocket } from './backend-pool.js';
import type { PoolCounters } from './counters.js';
import { PoolFiller } from './filler.js';
import { idleDeath } from './idle-deaths.js';

export type { EvictionCause } from './backend-pool.js';
export { MAX_EARLY_BYTES, PooledSocket } from './backend-pool.js';
export type { PoolCounters } from './counters.js';
export { TLS_REFILL_DEFER_MS } from './filler.js';

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
  /** Told each refill's connect time (a latency-aware strategy's samples); null: nobody asks. */
  connectTimes: ((b: Backend, ms: number, now: number) => void) | null = null;
  private readonly reaper: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly onUp = (b: Backend): void => this.ensure(b);
  private readonly onGone = (b: Backend): void => this.drop(b, 'backend-down');
  private readonly onState = (): void => this.syncEligibility();

  private readonly filler: PoolFiller;

  /** The first refill backoff (retry_delay, at least 100 ms); doubles per failure. */
  get refillBaseMs(): number {
    return this.opts.refillBaseMs;
  }

  constructor(private readonly opts: WarmPoolOptions) {
    this.filler = new PoolFiller({
      ...opts,
      counters: this.counters,
      evict: (p, ps, cause) => this.evict(p, ps, cause),
      connected: (b, ms, now) => this.connectTimes?.(b, ms, now),
    });
    const { cfg, backends } = opts;
    if (cfg.minIdle === 0) return;
    backends.on('up', this.onUp);
    backends.on('down', this.onGone);
    backends.on('removed', this.onGone);
    backends.on('state', this.onState);
    // Reap often enough that no socket outlives idle_ttl by more than a quarter of it.
    this.reaper = setInterval(
      () => this.reap(),
      Math.max(50, Math.min(this.opts.cfg.idleTtlMs / 4, 5000)),
    );
    this.reaper.unref();
  }

  get enabled(): boolean {
    return this.opts.cfg.minIdle > 0;
  }

  /** Fills every eligible backend's pool; call once the service starts. */
  start(): void {
    if (!this.enabled) return;
    for (const b of this.opts.backends.all) this.ensure(b);
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
   * and must attach its own listeners before calling `detach(ps)`; the pool no
   * longer hears its FIN.
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
      else if (this.opts.clock.now() - ps.openedAt >= p.life.retireAtMs)
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
        if (p.target < this.opts.cfg.maxIdle) p.target++;
        this.filler.soon(p);
      }
      return null;
    }
    this.counters.hits++;
    // Only a socket that outlived youth proves the backend keeps them: a young one may
    // just not have been closed yet (a backend at its own client limit).
    if (this.opts.clock.now() - ps.openedAt >= this.youngMs) p.proven();
    this.filler.soon(p);
    // A taken socket's FIN is its taker's to hear, and the pool's 'end' listener comes off
    // before the taker's goes on: Node keeps one of its own there, so a third listener would
    // grow the array to 19 slots, kept for the session's life (136 B per idle session,
    // a heap snapshot diff of pooled against dialled sessions).
    ps.socket.removeListener('end', ps.onEnd);
    return ps;
  }

  /** Detaches the pool's other listeners from a taken socket; the caller's are already on it. */
  detach(ps: PooledSocket): void {
    const s = ps.socket;
    s.removeListener('data', ps.onData);
    s.removeListener('error', ps.onError);
    s.removeListener('close', ps.onEnd);
  }

  /** Closes idle sockets older than idle_ttl (they are replaced by refill), and shrinks burst targets. */
  reap(): void {
    const now = this.opts.clock.now();
    const cutoff = now - this.opts.cfg.idleTtlMs;
    for (const p of this.pools.values()) {
      if (p.earlyCloses > 0 && p.idle.some((ps) => now - ps.openedAt >= this.youngMs)) p.proven();
      for (let i = p.idle.length - 1; i >= 0; i--) {
        const ps = p.idle[i] as PooledSocket;
        if (ps.openedAt <= cutoff) this.evict(p, ps, 'expired');
        else if (now - ps.openedAt >= p.life.retireAtMs) this.evict(p, ps, 'retired');
      }
      if (p.missesSinceReap === 0 && p.target > this.opts.cfg.minIdle) p.target--;
      p.missesSinceReap = 0;
      this.filler.refill(p);
    }
  }

  /** Closes every idle socket and stops refilling; the pool is done. */
  close(): void {
    this.closed = true;
    this.opts.backends.off('up', this.onUp);
    this.opts.backends.off('down', this.onGone);
    this.opts.backends.off('removed', this.onGone);
    this.opts.backends.off('state', this.onState);
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
      p = new BackendPool(b, this.opts.cfg.minIdle, this.opts.clock);
      this.pools.set(b, p);
    }
    this.filler.refill(p);
  }

  private syncEligibility(): void {
    for (const b of this.opts.backends.all) {
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
      const now = this.opts.clock.now();
      const c = {
        counters: this.counters,
        log: this.opts.log,
        now,
        refillBaseMs: this.opts.refillBaseMs,
        youngMs: this.youngMs,
        retryIn: (ms: number) => this.filler.retryIn(p, ms),
        retireNow: () => this.filler.retireNow(p),
      };
      if (idleDeath(c, p, cause, now - ps.openedAt)) return;
    }
    // It lived long enough to show the backend keeps idle connections.
    p.proven();
    this.filler.refill(p);
  }

  /** An idle socket that dies before this age died young: half of idle_ttl, 100 ms to 5 s. */
  private get youngMs(): number {
    return Math.max(100, Math.min(this.opts.cfg.idleTtlMs / 2, 5000));
  }
}
