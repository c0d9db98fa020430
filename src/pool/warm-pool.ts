import type { Socket } from 'node:net';
import type { Backend } from '../backend/backend.js';
import type { BackendSet } from '../backend/backend-set.js';
import type { Clock } from '../clock.js';
import type { PoolConfig } from '../config/schema.js';
import type { Logger } from '../logger.js';
import { connectTo } from '../proxy/connect.js';

/** Bytes a backend may send to an idle pooled socket (a greeting) before we give up on it. */
export const MAX_EARLY_BYTES = 64 * 1024;
const MAX_REFILL_BACKOFF_MS = 30_000;

export type EvictionCause =
  | 'closed'
  | 'error'
  | 'expired'
  | 'overflow'
  | 'backend-down'
  | 'shutdown';

/** Plain counters, read by metrics at scrape time. */
export interface PoolCounters {
  hits: number;
  misses: number;
  refills: number;
  refillFailures: number;
  evictions: Record<EvictionCause, number>;
}

/** What the admin API, metrics and tests may read of a pool. */
export interface PoolStats {
  readonly counters: PoolCounters;
  readonly idleCount: number;
  idleFor(b: Backend): number;
}

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
class BackendPool {
  readonly idle: PooledSocket[] = [];
  connecting = 0;
  /** Idle sockets wanted now: min_idle, raised toward max_idle by misses, decaying back. */
  target: number;
  missesSinceReap = 0;
  backoffMs = 0;
  retryTimer: NodeJS.Timeout | null = null;
  closed = false;
  constructor(
    readonly backend: Backend,
    minIdle: number,
  ) {
    this.target = minIdle;
  }
}

/**
 * Pre-opened backend connections, so a client skips the backend connect.
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
export class WarmPool implements PoolStats {
  readonly counters: PoolCounters = {
    hits: 0,
    misses: 0,
    refills: 0,
    refillFailures: 0,
    evictions: { closed: 0, error: 0, expired: 0, overflow: 0, 'backend-down': 0, shutdown: 0 },
  };
  private readonly pools = new Map<Backend, BackendPool>();
  private readonly reaper: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly onUp = (b: Backend): void => this.ensure(b);
  private readonly onGone = (b: Backend): void => this.drop(b, 'backend-down');
  private readonly onState = (): void => this.syncEligibility();

  constructor(
    private readonly cfg: PoolConfig,
    private readonly backends: BackendSet,
    private readonly connectTimeoutMs: number,
    private readonly refillBaseMs: number,
    private readonly log: Logger,
    private readonly clock: Clock,
  ) {
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

  idleFor(b: Backend): number {
    return this.pools.get(b)?.idle.length ?? 0;
  }

  /**
   * A live idle socket to `b`, or null (a miss). The caller owns the socket
   * and must attach its own listeners before calling `detach(ps)`.
   */
  take(b: Backend): PooledSocket | null {
    if (!this.enabled) return null;
    const p = this.pools.get(b);
    let ps = p?.idle.pop();
    // Listeners evict on FIN/RST/error as they happen; this catches a socket destroyed some other way.
    while (ps && (ps.socket.destroyed || !ps.socket.readable)) {
      this.counters.evictions.closed++;
      ps.socket.destroy();
      ps = p?.idle.pop();
    }
    if (!p || !ps) {
      this.counters.misses++;
      if (p) {
        p.missesSinceReap++;
        if (p.target < this.cfg.maxIdle) p.target++;
        this.refill(p);
      }
      return null;
    }
    this.counters.hits++;
    this.refill(p);
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
    const cutoff = this.clock.now() - this.cfg.idleTtlMs;
    for (const p of this.pools.values()) {
      for (let i = p.idle.length - 1; i >= 0; i--) {
        const ps = p.idle[i] as PooledSocket;
        if (ps.openedAt <= cutoff) this.evict(p, ps, 'expired');
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
      p = new BackendPool(b, this.cfg.minIdle);
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
    while (p.idle.length > 0) this.evict(p, p.idle[p.idle.length - 1] as PooledSocket, cause);
    this.pools.delete(b);
  }

  private refill(p: BackendPool): void {
    if (p.closed || p.retryTimer) return;
    // While backing off, one attempt at a time; otherwise fill the gap at once.
    const want = p.backoffMs > 0 ? Math.min(1, p.target) : p.target;
    while (p.idle.length + p.connecting < want && p.connecting < (p.backoffMs > 0 ? 1 : want)) {
      this.open(p);
    }
  }

  private open(p: BackendPool): void {
    p.connecting++;
    connectTo(p.backend, this.connectTimeoutMs, (cause, sock) => {
      p.connecting--;
      if (cause === null) this.opened(p, sock);
      else this.refillFailed(p, cause);
    });
  }

  private opened(p: BackendPool, sock: Socket): void {
    if (p.closed) {
      sock.destroy();
      return;
    }
    p.backoffMs = 0;
    this.counters.refills++;
    this.backends.reportDialSuccess(p.backend);
    const ps = new PooledSocket(sock, p.backend, this.clock.now(), (x, c) => this.evict(p, x, c));
    sock.on('data', ps.onData);
    sock.once('end', ps.onEnd);
    sock.on('error', ps.onError);
    sock.once('close', ps.onEnd);
    p.idle.push(ps);
    this.refill(p);
  }

  private refillFailed(p: BackendPool, cause: string): void {
    this.counters.refillFailures++;
    this.backends.recordDialFailure(p.backend, `pool refill: ${cause}`);
    if (p.closed || p.retryTimer) return;
    p.backoffMs =
      p.backoffMs === 0 ? this.refillBaseMs : Math.min(p.backoffMs * 2, MAX_REFILL_BACKOFF_MS);
    this.log.debug(
      { backend: p.backend.address, cause, retryInMs: p.backoffMs },
      'pool refill failed',
    );
    p.retryTimer = setTimeout(() => {
      p.retryTimer = null;
      this.refill(p);
    }, p.backoffMs);
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
    if (cause !== 'shutdown' && cause !== 'backend-down') this.refill(p);
  }
}
