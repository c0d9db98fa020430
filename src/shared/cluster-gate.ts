import type { Clock } from '../clock.js';
import type { SourceLimiter } from '../proxy/source-limits.js';
import type { RedisLink } from './redis-link.js';
import { SharedStick } from './redis-stick.js';
import { SharedLimits } from './shared-limits.js';
import type { StickyStrategy } from './sticky-strategy.js';

/** Who the gate holds: a session after its PROXY header (and hello). */
export interface GateClient {
  readonly clientIp: string;
  readonly serverName?: string | null;
}

/**
 * One service's part of the [cluster] Redis: its shared stick
 * table and shared limits, and the one place an accept may wait on Redis.
 * `hold` is asked before admission's limits and the pick; it holds the
 * session only when this instance cannot decide from what it has (a stick
 * key not in the local table, a source whose lease is used up) and Redis is
 * up, and for at most cluster.wait: then the session goes on whatever Redis
 * said by then (a late answer still lands, for the next client).
 */
export class ServiceShared {
  private stick: SharedStick | null = null;
  private sticky: StickyStrategy | null = null;

  constructor(
    private readonly link: RedisLink,
    private readonly service: string,
    private readonly clock: Clock,
  ) {}

  /** The service's sticky strategy (after construction and each reload; null: no [stick]). */
  attach(sticky: StickyStrategy | null): void {
    this.sticky = sticky;
    if (sticky === null) {
      if (this.stick) this.stick.close();
      this.stick = null;
      return;
    }
    if (this.stick) this.stick.retarget(sticky.table);
    else this.stick = new SharedStick(this.link, this.service, sticky.table, this.clock);
    const s = this.stick;
    sticky.write = (key, address, moved) => s.write(key, address, moved);
  }

  /** A limiter whose counts hold across instances. */
  limiter(maxConnections: number, maxRate: number): SourceLimiter {
    return new SharedLimits(maxConnections, maxRate, this.link, this.service);
  }

  /** An operator removed stick entries (null: all). */
  forget(key: string | null): void {
    this.stick?.forget(key);
  }

  /**
   * True when `c` must wait for Redis; `then` runs once, after Redis answered
   * or cluster.wait passed. False (and `then` never runs): go on now.
   */
  hold(c: GateClient, limiter: SourceLimiter | null, then: () => void): boolean {
    if (!this.link.up) return false;
    const stickWait = this.lookup(c);
    let leaseWait: Promise<void> | null = null;
    const shared = limiter instanceof SharedLimits ? limiter : null;
    if (shared?.needsLease(c.clientIp, this.clock.now()))
      leaseWait = shared.fetch(c.clientIp, this.clock.now());
    if (stickWait === null && leaseWait === null) return false;
    let done = false;
    const go = (late: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (leaseWait !== null) shared?.settled(c.clientIp, late);
      then();
    };
    const timer = setTimeout(() => go(true), this.link.cfg.waitMs);
    const answered = (): void => go(false);
    void Promise.all([stickWait, leaseWait]).then(answered, answered);
    return true;
  }

  /**
   * Starts reading `c`'s stick key from Redis now, without holding anything
   * (a terminating service, before the TLS handshake): the answer is in the
   * local table by the time the handshake is done, and `hold` then finds it.
   */
  prefetch(c: GateClient): void {
    if (this.link.up) void this.lookup(c);
  }

  /** Reads `c`'s stick key from Redis when the local table lacks it (or it is stale); null: no need. */
  private lookup(c: GateClient): Promise<unknown> | null {
    const st = this.sticky;
    const stick = this.stick;
    if (st === null || stick === null) return null;
    const key = st.on === 'source' ? c.clientIp : (c.serverName ?? '');
    if (key === '') return null;
    const e = st.table.peek(key);
    if (e !== null && this.clock.now() - e.usedAt < st.table.expireMs) return null;
    return stick.lookup(key).then((address) => {
      // A local pick made meanwhile wins over Redis's older word.
      if (address !== null && st.table.peek(key) === null)
        st.table.set(key, address, this.clock.now());
    });
  }

  close(): void {
    this.stick?.close();
  }
}
