import type { BackendSet } from '../backend/backend-set.js';
import type { Clock } from '../clock.js';
import type { ServiceConfig } from '../config/schema.js';
import type { LbError } from '../errors.js';

/** Why a session ended; a fixed set, for the access log and metrics. */
export type TerminationCause =
  | 'client-closed'
  | 'backend-closed'
  | 'idle-timeout'
  /** client_timeout: the client sent nothing for that long. */
  | 'client-timeout'
  /** server_timeout: the backend sent nothing for that long. */
  | 'server-timeout'
  /** tunnel_timeout: both sides had spoken, then both were silent that long. */
  | 'tunnel-timeout'
  | 'connect-failed'
  | 'refused-no-backend'
  | 'refused-limit'
  | 'refused-proxy'
  /** Not in the service's allow list, or in its deny list. */
  | 'refused-denied'
  /** Ended by a reload with apply_to_open: its client is now denied. */
  | 'denied'
  /** Ended by health.on_down = "shutdown-sessions": its backend was marked down. */
  | 'backend-down'
  /** Ended by health.on_up_primary: it was on a backup and a primary came back. */
  | 'primary-back'
  | 'max-lifetime'
  /** Ended by an operator through the admin API (DELETE …/sessions/ID). */
  | 'admin'
  | 'shutdown'
  | 'error';

/**
 * Where a session is in its life (one field, Session.phase, changed only by
 * its `enter`): accepted (paused); reading its PROXY header; connecting
 * (admission, then the dial, a redial included); queued for a backend slot;
 * spliced to its backend; ended (both legs closed). Read by the admin API.
 */
export type SessionPhase = 'accepted' | 'header' | 'connecting' | 'queued' | 'spliced' | 'ended';

/** The service keys a session reads. */
export type SessionConfig = Pick<
  ServiceConfig,
  'idleTimeoutMs' | 'maxLifetimeMs' | 'acceptProxy' | 'sendProxy'
>;

/**
 * What a session reaches of its service (proxy/sessions.ts's OpenSessions),
 * for a session of type S (session.ts names it `SessionHost`, for its Session).
 */
export interface HostOf<S> {
  readonly backends: BackendSet;
  readonly clock: Clock;
  /** Read at each use, so a reload applies to sessions that start after it. */
  readonly cfg: SessionConfig;
  /** The client is who it says it is (PROXY header read if required): apply source limits, then dial. */
  admit(s: S): void;
  /** A PROXY header was missing, malformed or late. */
  proxyHeaderFailed(s: S, reason: string): void;
  /** The backend leg is ready (s.poolHit says whether it came warm from the pool). */
  sessionReady(s: S): void;
  /** Called once, when both legs are closed. */
  sessionEnded(s: S): void;
  /** The dial ended without a backend; the session closes. */
  dialFailed(s: S, err: LbError): void;
  /** The session's own code threw (a bug, or input nothing foresaw): it was closed. */
  sessionFailed(s: S, err: unknown): void;
}

/** Why a session whose dial ended without a backend ends. */
export function dialFailureCause(err: LbError): TerminationCause {
  if (err.code === 'LB_ERR_NO_BACKEND') return 'refused-no-backend';
  return err.code === 'LB_ERR_LIMIT' ? 'refused-limit' : 'connect-failed';
}
