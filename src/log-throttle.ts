import type { Clock } from './clock.js';

/**
 * At most one pass per interval, for log lines a peer or an outage can
 * trigger at any rate: the line that passes says how many were held back.
 */
export class LogThrottle {
  private last = Number.NEGATIVE_INFINITY;
  private held = 0;

  constructor(
    private readonly intervalMs: number,
    private readonly clock: Clock,
  ) {}

  /** The number of calls held back since the last pass (0 or more), or -1 when this call is held back too. */
  pass(): number {
    const now = this.clock.now();
    if (now - this.last < this.intervalMs) {
      this.held++;
      return -1;
    }
    const n = this.held;
    this.held = 0;
    this.last = now;
    return n;
  }
}
