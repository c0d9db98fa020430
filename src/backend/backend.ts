import type { BackendConfig } from '../config/schema.js';
import {
  DIAL_CAUSES,
  type DialCause,
  PROBE_CAUSES,
  type ProbeCause,
  zeroCounts,
} from './causes.js';

/**
 * A backend's health, in one field (HAProxy's srv_state): `up` takes
 * traffic; `down` does not; with no active probes (health kind "none") a
 * down backend turns `half-open` after its backoff, and `trial` while the one
 * trial session it then gets is being dialled. Changed only by `enter`.
 */
export type HealthPhase = 'up' | 'down' | 'half-open' | 'trial';

/**
 * Flags on a backend beside its health (HAProxy's srv_admin), set only by
 * `setAdmin`: drained (no new sessions), disabled by an operator
 * (maintenance), removed from its set, its checks paused.
 */
export const Admin = Object.freeze({ DRAIN: 1, MAINT: 2, REMOVED: 4, CHECKS_PAUSED: 8 });
export type AdminFlag = (typeof Admin)[keyof typeof Admin];

/**
 * One backend and its live state: the set's own, writable entry. Fields are
 * public for cheap reads on the hot path, but only src/backend/ writes them
 * (house rule 2): everywhere else a backend is the read-only `Backend`.
 */
export class BackendEntry {
  readonly address: string;
  readonly host: string;
  readonly port: number;
  weight: number;
  /** The weight its config gave (the file's, discovery's, or the admin API's at adding); `weight` may differ (API, agent). */
  configuredWeight: number;
  backup: boolean;
  maxConnections: number;
  maxRate: number;
  slowStartMs: number;
  /** Its zone, from discovery (a Kubernetes endpoint's); null: not known. */
  zone: string | null;

  /** Its health (see HealthPhase); it starts up, unchecked (see BackendSet). */
  phase: HealthPhase = 'up';
  /** Its Admin flags. */
  admin = 0;
  /** Why it is down, for logs and the admin API; null while healthy. */
  downReason: string | null = null;

  consecutiveFailures = 0;
  consecutiveSuccesses = 0;
  /** The last active probe's result; null before the first. */
  lastCheck: { ok: boolean; detail: string; latencyMs: number; at: number } | null = null;
  /** The last probe that failed (kept after later successes, for the admin API and metrics). */
  lastFailure: { detail: string; at: number } | null = null;
  /** The agent check's last contact: its reply, or why it could not be asked. */
  lastAgent: { ok: boolean; detail: string; at: number } | null = null;
  /** The agent said "down": held down, whatever probes say, until it says "up". */
  agentDown = false;
  /** Next wait before a half-open trial; doubles on each failed trial. */
  trialBackoffMs = 0;
  trialTimer: NodeJS.Timeout | null = null;

  /** Clock ms when it last came back up; slow start ramps from here. 0: never down. */
  upSince = 0;
  /** max_rate token bucket: tokens at `rateAt` (clock ms). */
  rateTokens = 0;
  rateAt = 0;

  active = 0;
  sessionsTotal = 0;
  dialFailuresTotal = 0;
  /** Sessions cut by an error or reset on the backend's side (a crash, a kill). */
  sessionsAbortedTotal = 0;
  /** Bytes read from the backend / written to it, counted at session close. */
  bytesFromBackend = 0;
  bytesToBackend = 0;
  /** dialFailuresTotal by class, plus dials that failed on the balancer's own resources ("local"). */
  readonly dialFailures: Record<DialCause, number> = zeroCounts(DIAL_CAUSES);
  /** Failed probes by class (see backend/causes.ts). */
  readonly probeFailures: Record<ProbeCause, number> = zeroCounts(PROBE_CAUSES);
  /** Wall-clock ms of the last health change (up <-> down), or of its creation. */
  stateChangedAt = Date.now();
  /** Wall-clock ms it went down (0 while healthy), and the down time of earlier outages. */
  downSince = 0;
  downMsBefore = 0;

  constructor(cfg: BackendConfig) {
    this.address = cfg.address;
    this.host = cfg.host;
    this.port = cfg.port;
    this.weight = cfg.weight;
    this.configuredWeight = cfg.weight;
    this.backup = cfg.backup;
    this.maxConnections = cfg.maxConnections;
    this.maxRate = cfg.maxRate;
    this.slowStartMs = cfg.slowStartMs;
    this.zone = cfg.zone ?? null;
    this.rateTokens = cfg.maxRate;
  }

  /** The one change of its health phase. */
  enter(phase: HealthPhase): void {
    this.phase = phase;
  }

  /** The one change of its Admin flags; returns whether `flag` changed. */
  setAdmin(flag: AdminFlag, on: boolean): boolean {
    if (((this.admin & flag) !== 0) === on) return false;
    this.admin ^= flag;
    return true;
  }

  /** Eligible as far as health goes. */
  get healthy(): boolean {
    return this.phase === 'up';
  }

  /** Circuit half-open (health kind "none"): one trial session may go here, or is under way. */
  get halfOpen(): boolean {
    return this.phase === 'half-open' || this.phase === 'trial';
  }

  /** The half-open trial dial is under way; no other session is sent meanwhile. */
  get trialInFlight(): boolean {
    return this.phase === 'trial';
  }

  /** Draining: no new sessions; open ones continue. */
  get draining(): boolean {
    return (this.admin & Admin.DRAIN) !== 0;
  }

  /** Disabled by an operator (maintenance): out of rotation, probes or not, until enabled. */
  get disabled(): boolean {
    return (this.admin & Admin.MAINT) !== 0;
  }

  /** Removed from its set; kept alive only by the sessions still open on it. */
  get removed(): boolean {
    return (this.admin & Admin.REMOVED) !== 0;
  }

  /** An operator paused its probes (and agent checks): its health stays as it is until resumed. */
  get checksPaused(): boolean {
    return (this.admin & Admin.CHECKS_PAUSED) !== 0;
  }

  /** Milliseconds spent down, the current outage included. */
  downMs(now = Date.now()): number {
    return this.downMsBefore + (this.downSince > 0 ? now - this.downSince : 0);
  }

  /** A short state word for logs and APIs. */
  get state(): 'up' | 'down' | 'draining' | 'disabled' {
    if (this.disabled) return 'disabled';
    if (this.draining) return 'draining';
    return this.phase === 'up' ? 'up' : 'down';
  }
}

/** A backend as everyone outside src/backend/ sees it: read-only; changes go through BackendSet. */
export type Backend = Readonly<Omit<BackendEntry, 'enter' | 'setAdmin'>>;
/** `new Backend(cfg)`: a fresh entry (BackendSet makes its own; tests and benches make loose ones). */
export const Backend = BackendEntry;

/** The set's own entry of a backend it handed out (src/backend/ only). */
export function entryOf(b: Backend): BackendEntry {
  return b as BackendEntry;
}

/** Share of full weight a slow-starting backend begins at. */
export const SLOW_START_FLOOR = 0.1;

/**
 * Weight to pick by now: the configured weight, ramped linearly from 10 % to
 * 100 % over slow_start after the backend came back up.
 */
export function effectiveWeight(b: Backend, now: number): number {
  if (b.slowStartMs === 0 || b.upSince === 0) return b.weight;
  const f = (now - b.upSince) / b.slowStartMs;
  if (f >= 1) return b.weight;
  return b.weight * Math.max(f, SLOW_START_FLOOR);
}

/** max_rate tokens available at `now`, without spending any. */
export function rateTokensAt(b: Backend, now: number): number {
  const t = b.rateTokens + ((now - b.rateAt) * b.maxRate) / 1000;
  return Math.min(t, b.maxRate);
}

/**
 * Can take a new session now: below its max_connections and with a max_rate
 * token to spend. Health and draining are decided earlier, in the candidate list.
 * A cluster worker's share of NO_SHARE (-1) takes none: active >= -1 always,
 * and a negative rate has no token.
 */
export function isAvailable(b: Backend, now: number): boolean {
  if (b.maxConnections !== 0 && b.active >= b.maxConnections) return false;
  return b.maxRate === 0 || (b.maxRate > 0 && rateTokensAt(b, now) >= 1);
}
