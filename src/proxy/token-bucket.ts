/** How much a full bucket holds: this many ms at its rate (the burst a paused side may catch up). */
export const BURST_MS = 100;

/**
 * A token bucket in bytes that may go into debt: a chunk already read is
 * always passed on whole (never held back, never split), and its side then
 * stays paused until the debt is paid. Over any stretch longer than a burst,
 * the bytes through it stay within `rate` a second plus one chunk. The rate
 * is given at each use, so a reload's new rate applies from the next chunk.
 */
export class TokenBucket {
  private tokens: number;
  private stamp: number;

  constructor(rate: number, now: number) {
    this.tokens = (rate * BURST_MS) / 1000;
    this.stamp = now;
  }

  /** Refills for the time since the last use (up to a full bucket), takes `n`; false while in debt. */
  take(n: number, rate: number, now: number): boolean {
    let t = this.tokens + ((now - this.stamp) * rate) / 1000;
    const full = (rate * BURST_MS) / 1000;
    if (t > full) t = full;
    this.tokens = t - n;
    this.stamp = now;
    return this.tokens >= 0;
  }

  /** Milliseconds until the debt is paid at `rate` (0: none). */
  debtMs(rate: number): number {
    return this.tokens >= 0 ? 0 : (-this.tokens * 1000) / rate;
  }
}
