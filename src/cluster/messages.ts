import type { BackendState } from '../backend/backend-set.js';
import type { ConnectFailure } from '../backend/causes.js';
import type { BackendConfig, Config, LogLevel } from '../config/schema.js';

/** Every backend's state, per service: the primary's verdicts, sent on each change. */
export type StateMap = Record<string, BackendState[]>;

/** Per service with [discovery], the discovered backends in rotation in the primary. */
export type DiscoveredMap = Record<string, BackendConfig[]>;

/**
 * Per service, every backend of the primary's set (whole limits, not a
 * worker's share): workers add the ones the admin API added and remove the
 * ones it removed (see Service.followMembers).
 */
export type MembersMap = Record<string, BackendConfig[]>;

/** What the primary asks of a worker's open sessions (admin API). */
export type SessionQuery =
  | { op: 'list'; service: string; after: number; limit: number }
  | { op: 'end'; service: string; id: number }
  /** A stick table's entries (clear: delete them, or the one `key`). */
  | { op: 'stick'; service: string; key: string | null; clear: boolean; limit: number };

/** What a worker starts from: the config and state in force when it says hello. */
export interface WorkerInit {
  config: Config;
  logLevel: LogLevel;
  /** Reloads set the level from the file (no --log-level on the command line). */
  followConfigLogLevel: boolean;
  state: StateMap;
  discovered: DiscoveredMap;
  members: MembersMap;
  /** Bind each listen address with SO_REUSEPORT (see reuse-port.ts). */
  reusePort: boolean;
}

/** Primary → worker. */
export type ToWorker =
  /** `workers`: how many run now (a reload may name another count, applied at restart). */
  | ({ t: 'init'; slot: number; workers: number } & WorkerInit)
  /**
   * Sent with a handle, before `init` (or a reload that adds `address`): a socket the
   * primary holds (held-sockets.ts), to listen on for `address`; several for one address
   * are all listened on.
   */
  | { t: 'socket'; address: string }
  /** `discovered` and `members` are applied first: the state may speak of backends they add. */
  | { t: 'state'; services: StateMap; discovered: DiscoveredMap; members: MembersMap }
  | { t: 'sessions'; id: number; q: SessionQuery }
  | { t: 'reload'; id: number; config: Config }
  | { t: 'query'; id: number; what: 'view' | 'metrics' }
  /** Drain for up to timeoutMs (0: close every session now), then exit. */
  | { t: 'stop'; timeoutMs: number };

/** Worker → primary. */
export type FromWorker =
  /**
   * The worker listens for messages now. Sent first: a message that arrives
   * before an ES module worker has attached its listener is dropped, so the
   * primary waits for this before sending `init`.
   */
  | { t: 'hello' }
  | { t: 'ready' }
  /** The worker could not start (a listen address in use); it exits after sending this. */
  | { t: 'fatal'; message: string }
  /** A dial outcome, the passive health signal the primary's BackendSet decides on (failure null: it connected). */
  | { t: 'dial'; service: string; backend: string; failure: ConnectFailure | null }
  /**
   * A copy of the socket this worker listens on for `address`, sent with the message once
   * it listens (at start, after a reload): the primary holds it for the worker's restart
   * and for an upgrade (held-sockets.ts).
   */
  | { t: 'handle'; address: string }
  | { t: 'reply'; id: number; ok: true; data: unknown }
  | { t: 'reply'; id: number; ok: false; error: string };

export function isFromWorker(m: unknown): m is FromWorker {
  return typeof m === 'object' && m !== null && typeof (m as { t?: unknown }).t === 'string';
}
