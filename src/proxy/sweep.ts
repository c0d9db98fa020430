import type { Clock } from '../clock.js';

/** A sweep's period for a span (a deadline, an interval): an eighth of it, 25 ms to 1 s. */
export function sweepPeriod(spanMs: number): number {
  return Math.min(1000, Math.max(25, Math.round(spanMs / 8)));
}

/**
 * One timer per service that visits every open session once a period
 * (IdleSweep, AccessFlush), instead of a timer per session. It runs only
 * while sessions are open and its span is set; the span is read at each
 * tick, so a reload that sets, changes or clears it applies to open sessions.
 */
export abstract class SessionSweep<S> {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    protected readonly sessions: ReadonlySet<S>,
    private readonly spanMs: () => number,
    protected readonly clock: Clock,
  ) {}

  /** A session is ready: make sure the sweep runs (nothing to do when it does, or with no span). */
  ensure(): void {
    if (this.timer !== null) return;
    const span = this.spanMs();
    if (span <= 0) return;
    this.starting();
    this.arm(span);
  }

  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /** The timer is about to start (it was not running). */
  protected starting(): void {}

  /** Visits the open sessions (there is at least one). */
  protected abstract visit(now: number, spanMs: number): void;

  private arm(span: number): void {
    this.timer = setTimeout(() => this.tick(), sweepPeriod(span));
    this.timer.unref();
  }

  private tick(): void {
    this.timer = null;
    const span = this.spanMs();
    if (span <= 0 || this.sessions.size === 0) return;
    this.visit(this.clock.now(), span);
    if (this.sessions.size > 0) this.arm(span);
  }
}
