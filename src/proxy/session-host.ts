import type { ServiceConfig } from '../config/schema.js';

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

/** The service keys a session reads. */
export type SessionConfig = Pick<
  ServiceConfig,
  'idleTimeoutMs' | 'maxLifetimeMs' | 'acceptProxy' | 'sendProxy'
>;
