import type { BackendSet } from '../backend/backend-set.js';
import type { Clock } from '../clock.js';
import type { ServiceConfig } from '../config/schema.js';
import type { LbError } from '../errors.js';
import type { Session } from './session.js';

/** Why a session ended; a fixed set, for the access log and metrics. */
export type TerminationCause =
  | 'client-closed'
  | 'backend-closed'
  | 'idle-timeout'
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

/** The service keys a session reads. */
export type SessionConfig = Pick<
  ServiceConfig,
  'idleTimeoutMs' | 'maxLifetimeMs' | 'acceptProxy' | 'sendProxy'
>;

export interface SessionHost {
  readonly backends: BackendSet;
  readonly clock: Clock;
  /** Read at each use, so a reload applies to sessions that start after it. */
  readonly cfg: SessionConfig;
  /** The client is who it says it is (PROXY header read if required): apply source limits, then dial. */
  admit(s: Session): void;
  /** A PROXY header was missing, malformed or late. */
  proxyHeaderFailed(s: Session, reason: string): void;
  /** The backend leg is ready (s.poolHit says whether it came warm from the pool). */
  sessionReady(s: Session): void;
  /** Called once, when both legs are closed. */
  sessionEnded(s: Session): void;
  /** The dial ended without a backend; the session closes. */
  dialFailed(s: Session, err: LbError): void;
  /** The session's own code threw (a bug, or input nothing foresaw): it was closed. */
  sessionFailed(s: Session, err: unknown): void;
}
