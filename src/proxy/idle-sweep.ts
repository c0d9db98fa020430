import type { Clock } from '../clock.js';
import { type SideDeadlines, shortestDeadline } from './side-timeouts.js';
import { SessionSweep } from './sweep.js';

export { sweepPeriod } from './sweep.js';

/** What the sweep asks of a session: see `Session.idleTick`. */
export interface Sweepable {
  idleTick(now: number, d: SideDeadlines): void;
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
export class IdleSweep extends SessionSweep<Sweepable> {
  constructor(
    sessions: ReadonlySet<Sweepable>,
    /** Read at each tick, so a reload's new deadlines apply to open sessions too. */
    private readonly deadlines: () => SideDeadlines,
    clock: Clock,
  ) {
    super(sessions, () => shortestDeadline(deadlines()), clock);
  }

  protected visit(now: number): void {
    const d = this.deadlines();
    for (const s of this.sessions) s.idleTick(now, d);
  }
}
