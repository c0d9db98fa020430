import type { Clock } from '../clock.js';
import { type SideDeadlines, shortestDeadline } from './side-timeouts.js';

/** What the sweep asks of a session: see `Session.idleTick`. */
export interface Sweepable {
  idleTick(now: number, d: SideDeadlines): void;
}

/** The sweep's period for a deadline: an eighth of it, 25 ms to 1 s. */
export function sweepPeriod(idleMs: number): number {
  return Math.min(1000, Math.max(25, Math.round(idleMs / 8)));
}

/**
 * idle_timeout for every open session of a service, by one timer instead of
 * two per session. `socket.setTimeout` gave each leg its own Timeout (0.4 KiB of
 * heap a session, measured) and re-armed it on every read and every write of
 * both legs; here a chunk costs a flag store (`Session.clientBusy`, `backendBusy`), and a timer that
 * runs only while sessions are open visits each once a period. A session ends
 * after at least `idle_timeout` of silence in both directions, and at most one
 * period later (an eighth of the deadline, at most 1 s). bench/RESULTS.md has
 * the measurement that chose this over `socket.setTimeout`. The same visit
 * enforces client_timeout, server_timeout and tunnel_timeout (see
 * side-timeouts.ts), its period set by the shortest deadline in force.
 */
export class IdleSweep {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly sessions: ReadonlySet<Sweepable>,
    /** Read at each tick, so a reload's new deadlines apply to open sessions too. */
    private readonly deadlines: () => SideDeadlines,
    private readonly clock: Clock,
  ) {}

  /** A session is ready: make sure the sweep runs (nothing to do when it does, or with no deadline). */
  ensure(): void {
    if (this.timer !== null) return;
    const idle = shortestDeadline(this.deadlines());
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
    const d = this.deadlines();
    const idle = shortestDeadline(d);
    if (idle <= 0 || this.sessions.size === 0) return;
    const now = this.clock.now();
    for (const s of this.sessions) s.idleTick(now, d);
    if (this.sessions.size > 0) this.arm(idle);
  }
}
