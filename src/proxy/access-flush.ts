import type { Clock } from '../clock.js';
import { sweepPeriod } from './idle-sweep.js';

/** What the flush reads of a session: when it was accepted, and whether it reached a backend. */
export interface Flushable {
  readonly acceptedAt: number;
  readonly readyAt: number;
}

/**
 * [log] access_interval: an interim access line for each open session every
 * `interval` of its life (at ages interval, 2 x interval, …), so an hour-long
 * connection shows in the log before it ends (Envoy's
 * access_log_flush_interval). One timer per service, as the idle sweep (and
 * only while sessions are open and the interval is set), visiting each
 * session once a period; no timer and no state per session: a session is due
 * when a multiple of the interval fell between the last visit and this one.
 */
export class AccessFlush<S extends Flushable> {
  private timer: NodeJS.Timeout | null = null;
  private last = 0;

  constructor(
    private readonly sessions: ReadonlySet<S>,
    private readonly intervalMs: () => number,
    private readonly clock: Clock,
    private readonly write: (s: S, now: number) => void,
  ) {}

  /** A session is ready: make sure the flush runs (nothing to do when it does, or with no interval). */
  ensure(): void {
    if (this.timer !== null) return;
    const every = this.intervalMs();
    if (every <= 0) return;
    this.last = this.clock.now();
    this.arm(every);
  }

  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private arm(every: number): void {
    this.timer = setTimeout(() => this.tick(), sweepPeriod(every));
    this.timer.unref();
  }

  private tick(): void {
    this.timer = null;
    // Read at each tick: a reload may set, change or clear the interval.
    const every = this.intervalMs();
    if (every <= 0 || this.sessions.size === 0) return;
    const now = this.clock.now();
    const last = this.last;
    this.last = now;
    for (const s of this.sessions) {
      if (s.readyAt === 0) continue;
      const due = Math.floor((now - s.acceptedAt) / every);
      if (due >= 1 && due > Math.floor((last - s.acceptedAt) / every)) this.write(s, now);
    }
    if (this.sessions.size > 0) this.arm(every);
  }
}
