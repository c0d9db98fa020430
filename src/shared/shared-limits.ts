import { SourceLimiter, type SourceVerdict } from '../proxy/source-limits.js';
import { FlushTimer } from './flush-timer.js';
import { Batch } from './redis-batch.js';
import type { RedisLink } from './redis-link.js';
import { epochSecond, FULL_RETRY_MS, newLease, type SourceLease } from './source-lease.js';

/**
 * max_connections_per_source and max_rate_per_source held across every
 * instance through Redis. Redis grants each instance slots and
 * tokens in batches (HAProxy's peers share counters; here the counts live in
 * one place and are leased), so most accepts never touch it: the gate asks
 * for a lease only when this instance's is used up, waits at most
 * cluster.wait, and `acquire` then decides from what it holds. Slots go back
 * (written behind) when a batch is unused. While Redis is away, or a lease
 * call for a source failed, each instance allows limit ÷ N (N: the instances
 * alive at the last heartbeat; at least 1 each).
 */
export class SharedLimits extends SourceLimiter {
  private readonly leases = new Map<string, SourceLease>();
  private readonly inflight = new Map<string, Promise<void>>();
  /** Slots to give back, by source; sent every flush_interval. */
  private readonly returns = new Map<string, number>();
  private readonly flusher = new FlushTimer(
    () => this.link.cfg.flushMs,
    () => this.flush(),
  );
  private closed = false;
  private readonly unsubscribe: (() => void)[];

  constructor(
    maxConnections: number,
    maxRate: number,
    private readonly link: RedisLink,
    private readonly service: string,
  ) {
    super(maxConnections, maxRate);
    this.unsubscribe = [
      link.whenUp(() => void this.refresh()),
      link.everyBeat(() => void this.refresh()),
    ];
  }

  /** One source's slots across the group: a hash of what each instance holds, and until when (see LEASE_SCRIPT). */
  private slotsKey(ip: string): string {
    return this.link.key('slots', this.service, ip);
  }

  /** This instance's fields in a slots hash. */
  private get heldField(): string {
    return `c:${this.link.cfg.instance}`;
  }

  private get aliveField(): string {
    return `t:${this.link.cfg.instance}`;
  }

  /** Slots or tokens asked for at a time. */
  private batch(limit: number): number {
    const b = this.link.cfg.leaseBatch;
    if (b > 0) return Math.min(b, limit);
    return Math.max(1, Math.floor(limit / (2 * this.link.instances)));
  }

  /** Each instance's share while Redis is away. */
  private share(limit: number): number {
    return Math.max(1, Math.floor(limit / this.link.instances));
  }

  private state(ip: string, now: number): SourceLease {
    let st = this.leases.get(ip);
    if (!st) {
      st = newLease(this.share(this.maxRate), now);
      this.leases.set(ip, st);
    }
    return st;
  }

  /** Whether an accept from `ip` should wait for Redis first (this instance's lease is used up). */
  needsLease(ip: string, now: number): boolean {
    if (!this.link.up) return false;
    const st = this.leases.get(ip);
    if (!st) return true;
    if (this.maxConnections > 0 && st.active + st.demand >= st.leased && now >= st.fullUntil)
      return true;
    if (this.maxRate > 0 && (st.win !== epochSecond() || st.tokens < 1 + st.demand)) return true;
    return false;
  }

  /** Asks Redis for more of this source's slots and tokens (one call per source at a time). */
  /**
   * Asks Redis for enough of this source's slots and tokens for every accept
   * held for it (one call per source at a time; an accept arriving meanwhile
   * asks after it, for what is still missing). The caller calls `settled`
   * when its accept goes on.
   */
  fetch(ip: string, now: number): Promise<void> {
    this.state(ip, now).demand++;
    const prev = this.inflight.get(ip);
    const p: Promise<void> = (
      prev ? prev.then(() => this.doFetch(ip, now)) : this.doFetch(ip, now)
    ).finally(() => {
      if (this.inflight.get(ip) === p) this.inflight.delete(ip);
    });
    this.inflight.set(ip, p);
    return p;
  }

  /**
   * A held accept goes on: its lease came, or (`late`) the wait ran out first,
   * and then this source is decided locally (limit ÷ N) until a call succeeds.
   */
  settled(ip: string, late: boolean): void {
    const st = this.leases.get(ip);
    if (!st) return;
    if (st.demand > 0) st.demand--;
    if (late) st.local = true;
  }

  private async doFetch(ip: string, now: number): Promise<void> {
    const c = this.link.client;
    const st = this.state(ip, now);
    if (!c) return;
    try {
      const missing = st.active + st.demand - st.leased;
      if (this.maxConnections > 0 && missing > 0 && now >= st.fullUntil) {
        const wall = Date.now();
        const got = await c.lease(
          this.slotsKey(ip),
          this.link.cfg.instance,
          Math.max(this.batch(this.maxConnections), missing),
          this.maxConnections,
          wall,
          3 * this.link.cfg.heartbeatMs,
          this.link.aliveUntil(wall),
        );
        st.leased += Number(got);
        // None left: a source at its limit asks Redis again at most every FULL_RETRY_MS.
        st.fullUntil = Number(got) === 0 ? now + FULL_RETRY_MS : 0;
      }
      if (this.maxRate > 0) {
        const win = epochSecond();
        if (st.win !== win) {
          st.win = win;
          st.tokens = 0;
        }
        if (st.tokens < Math.max(1, st.demand)) {
          const got = await c.tokens(
            this.link.key('rate', this.service, ip, String(win)),
            Math.max(this.batch(this.maxRate), Math.ceil(st.demand - st.tokens)),
            this.maxRate,
          );
          if (st.win === win) st.tokens += Number(got);
        }
      }
      st.local = false;
    } catch (err) {
      st.local = true;
      this.link.failed(err);
    }
  }

  override acquire(ip: string, now: number): SourceVerdict {
    const st = this.state(ip, now);
    return this.decide(st, !this.link.up || st.local, now);
  }

  /**
   * An accept the gate cannot hold (before a TLS handshake, or a routing
   * front's hello): what this instance holds decides; when that is used up
   * and Redis has not said "none left", this accept is decided on the local
   * share (limit ÷ N, as when the wait runs out) and Redis is asked for the
   * next ones in the background. It never waits.
   */
  override acquireAtOnce(ip: string, now: number): SourceVerdict {
    const st = this.state(ip, now);
    if (!this.link.up || st.local || !this.needsLease(ip, now)) return this.acquire(ip, now);
    const full = this.maxConnections > 0 && st.fullUntil !== 0;
    void this.fetch(ip, now).then(() => this.settled(ip, false));
    if (full) return 'connections';
    return this.decide(st, true, now);
  }

  private decide(st: SourceLease, local: boolean, now: number): SourceVerdict {
    if (this.maxConnections > 0) {
      const cap = local ? this.share(this.maxConnections) : st.leased;
      if (st.active >= cap) return 'connections';
    }
    if (this.maxRate > 0) {
      if (local) {
        const r = this.share(this.maxRate);
        st.localTokens = Math.min(r, st.localTokens + ((now - st.localAt) * r) / 1000);
        st.localAt = now;
        if (st.localTokens < 1) return 'rate';
        st.localTokens -= 1;
      } else {
        if (st.win !== epochSecond() || st.tokens < 1) return 'rate';
        st.tokens -= 1;
      }
    }
    st.active++;
    return 'ok';
  }

  override release(ip: string): void {
    const st = this.leases.get(ip);
    if (!st) return;
    st.active--;
    st.fullUntil = 0;
    // Slots unused beyond a batch go back, so the other instances can take them.
    const spare = st.leased - st.active;
    if (
      this.maxConnections > 0 &&
      spare > 0 &&
      (spare >= this.batch(this.maxConnections) || st.active === 0)
    ) {
      st.leased -= spare;
      this.returns.set(ip, (this.returns.get(ip) ?? 0) + spare);
      this.flusher.schedule();
    }
  }

  private async flush(): Promise<void> {
    const c = this.link.client;
    if (!c || !this.link.up || this.returns.size === 0) {
      // Redis away: its copy lapses with this instance's heartbeat; refresh() rewrites it on return.
      this.returns.clear();
      return;
    }
    const p = new Batch(c);
    for (const [ip, n] of this.returns) p.hincrby(this.slotsKey(ip), this.heldField, -n);
    this.returns.clear();
    await this.run(p);
  }

  /** Sends a batch; each failure is counted. */
  private async run(p: Batch): Promise<void> {
    for (const [err] of await p.exec()) if (err) this.link.failed(err);
  }

  /**
   * Rewrites what this instance holds (at each heartbeat, and when Redis comes
   * back): each source's slots, set to what is leased here, with its TTL.
   */
  private async refresh(): Promise<void> {
    const c = this.link.client;
    if (!c || !this.link.up || this.maxConnections === 0 || this.closed) return;
    const p = new Batch(c);
    const ttl = 3 * this.link.cfg.heartbeatMs;
    const alive = this.link.aliveUntil(Date.now());
    for (const [ip, st] of this.leases) {
      // Decided locally while Redis was away: what is open here now is held here.
      st.local = false;
      if (st.active > st.leased) st.leased = st.active;
      if (st.leased === 0) continue;
      const k = this.slotsKey(ip);
      p.hset(k, this.heldField, st.leased, this.aliveField, alive);
      p.pexpire(k, ttl);
    }
    if (p.length > 0) await this.run(p);
  }

  override sweep(now: number): void {
    const sec = epochSecond();
    for (const [ip, st] of this.leases)
      if (st.active === 0 && st.leased === 0 && st.win !== sec && !this.inflight.has(ip))
        this.leases.delete(ip);
    void now;
  }

  override get size(): number {
    return this.leases.size;
  }

  /**
   * Replaced (a reload changed the limits) or stopped: this limiter's slots in
   * Redis are given up now, as a local limiter's counts restart from zero.
   */
  override close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const f of this.unsubscribe) f();
    this.flusher.stop();
    const c = this.link.client;
    if (!c || !this.link.up || this.maxConnections === 0) return;
    const p = new Batch(c);
    for (const ip of this.leases.keys()) p.hdel(this.slotsKey(ip), this.heldField, this.aliveField);
    if (p.length > 0) void this.run(p);
  }
}
