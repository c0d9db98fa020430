import type { Clock } from '../clock.js';

/** What the sweep asks of a session: see `Session.idleTick`. */
export interface Sweepable {
  idleTick(now: number, idleMs: number): void;
}

/** The sweep's period for a deadline: an eighth of it, 25 ms to 1 s. */
export function sweepPeriod(idleMs: number): number {
  return Math.min(1000, Math.max(25, Math.round(idleMs / 8)));
}

/**
 * idle_timeout for every open session of a service, by one timer instead of
 * two per session. `socket.setTimeout` gave each leg its own Timeout (0.4 KiB of
 * heap a session, measured) and re-armed it on every read and every write of
 * both legs; here a chunk costs a flag store (`Session.busy`), and a timer that
 * runs only while sessions are open visits each once a period. A session ends
 * after at least `idle_timeout` of silence in both directions, and at most one
 * period later (an eighth of the deadline, at most 1 s). bench/RESULTS.md has
 * the measurement that chose this over `socket.setTimeout`.
 */
export class IdleSweep {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly sessions: ReadonlySet<Sweepable>,
    private readonly idleMs: () => number,
    private readonly clock: Clock,
  ) {}

  /** A session is ready: make sure the sweep runs (nothing to do when it does, or with no deadline). */
  ensure(): void {
    if (this.timer !== null) return;
    const idle = this.idleMs();
    if (idle > 0) this.arm(idle);
  }

  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private arm(idle: number): void {
    this.timer = setTimeout(() => this.tick(), sweepPeriod(idle));
    this.timer.unref();
  }

  private tick(): void {
    this.timer = null;
    // Read at each tick, so a reload's new deadline applies to open sessions too.
    const idle = this.idleMs();
    if (idle <= 0 || this.sessions.size === 0) return;
    const now = this.clock.now();
    for (const s of this.sessions) s.idleTick(now, idle);
    if (this.sessions.size > 0) this.arm(idle);
  }
}
