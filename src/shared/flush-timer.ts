/**
 * Write-behind to Redis: the first change after a flush arms one timer, and
 * the changes that follow ride on it; one flush sends them all. Stopped for
 * good by `stop()` (the table or limiter was replaced or closed).
 */
export class FlushTimer {
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    /** Read at each arming: a reload may change [cluster] flush_interval. */
    private readonly delayMs: () => number,
    private readonly flush: () => Promise<void>,
  ) {}

  schedule(): void {
    if (this.timer !== null || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.flush();
    }, this.delayMs());
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}
