import type { Clock } from '../clock.js';
import { SessionSweep } from './sweep.js';

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
export class AccessFlush<S extends Flushable> extends SessionSweep<S> {
  private last = 0;

  constructor(
    sessions: ReadonlySet<S>,
    intervalMs: () => number,
    clock: Clock,
    private readonly write: (s: S, now: number) => void,
  ) {
    super(sessions, intervalMs, clock);
  }

  protected override starting(): void {
    this.last = this.clock.now();
  }

  protected visit(now: number, every: number): void {
    const last = this.last;
    this.last = now;
    for (const s of this.sessions) {
      if (s.readyAt === 0) continue;
      const due = Math.floor((now - s.acceptedAt) / every);
      if (due >= 1 && due > Math.floor((last - s.acceptedAt) / every)) this.write(s, now);
    }
  }
}
