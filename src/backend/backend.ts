import type { BackendConfig } from '../config/schema.js';

/**
 * One backend and its live state. Fields are public for cheap reads on the
 * hot path, but only BackendSet writes them (house rule 2).
 */
export class Backend {
  readonly address: string;
  readonly host: string;
  readonly port: number;
  weight: number;
  backup: boolean;

  /** Eligible as far as health goes. See BackendSet for the state a backend starts in. */
  healthy = true;
  /** Why it is down, for logs and the admin API; null while healthy. */
  downReason: string | null = null;
  /** Draining: no new sessions; open ones continue. */
  draining = false;
  /** Removed from its set; kept alive only by the sessions still open on it. */
  removed = false;

  consecutiveFailures = 0;
  consecutiveSuccesses = 0;
  /** The last active probe's result; null before the first. */
  lastCheck: { ok: boolean; detail: string; latencyMs: number; at: number } | null = null;
  /** Circuit half-open (health kind "none"): one trial session may go here. */
  halfOpen = false;
  /** The half-open trial dial is under way; no other session is sent meanwhile. */
  trialInFlight = false;
  /** Next wait before a half-open trial; doubles on each failed trial. */
  trialBackoffMs = 0;
  trialTimer: NodeJS.Timeout | null = null;

  active = 0;
  sessionsTotal = 0;
  dialFailuresTotal = 0;
  /** Bytes read from the backend / written to it, counted at session close. */
  bytesFromBackend = 0;
  bytesToBackend = 0;

  constructor(cfg: Pick<BackendConfig, 'address' | 'host' | 'port' | 'weight' | 'backup'>) {
    this.address = cfg.address;
    this.host = cfg.host;
    this.port = cfg.port;
    this.weight = cfg.weight;
    this.backup = cfg.backup;
  }

  /** A short state word for logs and APIs. */
  get state(): 'up' | 'down' | 'draining' {
    if (this.draining) return 'draining';
    return this.healthy ? 'up' : 'down';
  }
}
