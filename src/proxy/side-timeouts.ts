import type { Socket } from 'node:net';
import type { ServiceConfig } from '../config/schema.js';
import type { TerminationCause } from './session-host.js';

/** The deadlines the idle sweep enforces, read from the service's config at each tick. */
export type SideDeadlines = Pick<
  ServiceConfig,
  'idleTimeoutMs' | 'clientTimeoutMs' | 'serverTimeoutMs' | 'tunnelTimeoutMs'
>;

/**
 * What the sweep keeps on a session to tell its sides apart: a flag per
 * direction, set by the data listeners where a chunk already crosses (a store,
 * as the single `busy` flag was), and the sweep time it last saw each.
 */
export interface SideQuiet {
  readonly client: Socket;
  readonly backend: Socket | null;
  /** A chunk came from the client since the sweep last looked. */
  clientBusy: boolean;
  /** A chunk came from the backend since the sweep last looked. */
  backendBusy: boolean;
  clientQuietSince: number;
  backendQuietSince: number;
  /** Bit 1: the client has sent a byte; bit 2: the backend has (both: a tunnel). */
  spoke: number;
  /** Its bandwidth limits: a side paused for them is held by us, not silent. */
  readonly shaper: { readonly upPaused: boolean; readonly downPaused: boolean } | null;
}

/** The shortest deadline in force (0: none), which sets the sweep's period. */
export function shortestDeadline(d: SideDeadlines): number {
  // No array of the four: the sweep asks at each session's start when it is not running.
  return shorter(
    shorter(d.idleTimeoutMs, d.clientTimeoutMs),
    shorter(d.serverTimeoutMs, d.tunnelTimeoutMs),
  );
}

/** The shorter of two deadlines, 0 being none. */
function shorter(a: number, b: number): number {
  return a === 0 || (b > 0 && b < a) ? b : a;
}

/** Both sides quiet from the start (the backend leg just attached). */
export function quietFrom(q: SideQuiet, now: number): void {
  q.clientQuietSince = now;
  q.backendQuietSince = now;
}

/**
 * The sweep's look at one session: which deadline, if any, it has passed.
 * Once both sides have spoken, tunnel_timeout (when set) replaces the other
 * three, as HAProxy's timeout tunnel replaces timeout client and server once a
 * tunnel is established; before, or without it, each applies on its own and
 * the first passed wins. A side that has sent its FIN is done, not silent: its
 * own timeout no longer applies (the other side's and idle_timeout still do).
 */
export function timedOut(q: SideQuiet, now: number, d: SideDeadlines): TerminationCause | null {
  const sh = q.shaper;
  if (sh !== null) {
    // Its bytes wait in the kernel because a limit paused the reading: not the peer's silence.
    if (sh.upPaused) q.clientBusy = true;
    if (sh.downPaused) q.backendBusy = true;
  }
  if (q.clientBusy) {
    q.clientBusy = false;
    q.clientQuietSince = now;
    q.spoke |= 1;
  }
  if (q.backendBusy) {
    q.backendBusy = false;
    q.backendQuietSince = now;
    q.spoke |= 2;
  }
  const quiet = now - Math.max(q.clientQuietSince, q.backendQuietSince);
  if (d.tunnelTimeoutMs > 0 && q.spoke === 3)
    return quiet >= d.tunnelTimeoutMs ? 'tunnel-timeout' : null;
  if (
    d.clientTimeoutMs > 0 &&
    now - q.clientQuietSince >= d.clientTimeoutMs &&
    !q.client.readableEnded
  )
    return 'client-timeout';
  if (
    d.serverTimeoutMs > 0 &&
    now - q.backendQuietSince >= d.serverTimeoutMs &&
    q.backend !== null &&
    !q.backend.readableEnded
  )
    return 'server-timeout';
  if (d.idleTimeoutMs > 0 && quiet >= d.idleTimeoutMs) return 'idle-timeout';
  return null;
}

/** A timeout with nothing in flight closes plainly; one side's, cut mid-stream perhaps, resets. */
export function closesPlainly(cause: TerminationCause): boolean {
  return cause === 'idle-timeout' || cause === 'tunnel-timeout';
}
