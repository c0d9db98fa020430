import { NO_SHARE } from '../config/schema.js';

/**
 * Per-source limits for one service: open sessions and new sessions a second
 * per client address. One small record per address with sessions open or
 * tokens spent; records of quiet addresses are dropped by `sweep`. A limit of
 * NO_SHARE (a cluster worker's share of a limit below the worker count)
 * refuses every source.
 */
interface SourceState {
  active: number;
  tokens: number;
  at: number;
}

export type SourceVerdict = 'ok' | 'connections' | 'rate';

export class SourceLimiter {
  private readonly sources = new Map<string, SourceState>();

  constructor(
    readonly maxConnections: number,
    readonly maxRate: number,
  ) {}

  get enabled(): boolean {
    return this.maxConnections !== 0 || this.maxRate !== 0;
  }

  /** Counts a new session from `ip` unless it is over a limit. */
  acquire(ip: string, now: number): SourceVerdict {
    // Before any record is made: a refused source must not grow the map.
    if (this.maxConnections === NO_SHARE) return 'connections';
    if (this.maxRate === NO_SHARE) return 'rate';
    let st = this.sources.get(ip);
    if (!st) {
      st = { active: 0, tokens: this.maxRate, at: now };
      this.sources.set(ip, st);
    }
    if (this.maxConnections > 0 && st.active >= this.maxConnections) return 'connections';
    if (this.maxRate > 0) {
      st.tokens = Math.min(this.maxRate, st.tokens + ((now - st.at) * this.maxRate) / 1000);
      st.at = now;
      if (st.tokens < 1) return 'rate';
      st.tokens -= 1;
    }
    st.active++;
    return 'ok';
  }

  /**
   * `acquire` for an accept that cannot be held for the cluster gate (before
   * a TLS handshake or a routing front's hello): the same here.
   */
  acquireAtOnce(ip: string, now: number): SourceVerdict {
    return this.acquire(ip, now);
  }

  release(ip: string): void {
    const st = this.sources.get(ip);
    if (st) st.active--;
  }

  /** Forgets addresses with nothing open and a full bucket. */
  sweep(now: number): void {
    for (const [ip, st] of this.sources) {
      if (st.active > 0) continue;
      if (this.maxRate === 0 || st.tokens + ((now - st.at) * this.maxRate) / 1000 >= this.maxRate)
        this.sources.delete(ip);
    }
  }

  get size(): number {
    return this.sources.size;
  }

  /** Replaced or stopped (a shared limiter gives its slots back). */
  close(): void {}
}
