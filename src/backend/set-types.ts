import type { AllDownPolicy, ServiceConfig } from '../config/schema.js';
import type { Backend } from './backend.js';

export interface BackendSetEvents {
  /** A backend became healthy again. */
  up: [backend: Backend];
  /** A backend went down; `reason` says why. */
  down: [backend: Backend, reason: string];
  /** The candidates that strategies pick from, or a weight among them, changed: strategies rebuild. */
  change: [candidates: readonly Backend[]];
  /** Some backend's state changed (health, trial, drain, disable, weight, membership): the pool and the cluster follow. */
  state: [];
  /** A backend joined the set at run time (the file, discovery, the admin API): probes start on it. */
  added: [backend: Backend];
  /** A backend left the set (removed at run time): probes stop on it. */
  removed: [backend: Backend];
}

export interface BackendSetOptions {
  allDown: AllDownPolicy;
  /** Consecutive failures (probe or live dial) that take a healthy backend down. */
  fall: number;
  /** Consecutive probe successes that bring a down backend back. */
  rise: number;
  /**
   * No active probes (health kind "none"): a downed backend gets a half-open
   * trial session after `trialBackoffMs`, doubling per failed trial.
   */
  passiveOnly: boolean;
  trialBackoffMs: number;
}

/** A service's settings for its backend set. */
export function setOptionsOf(cfg: ServiceConfig): BackendSetOptions {
  return {
    allDown: cfg.allDown,
    fall: cfg.health.fall,
    rise: cfg.health.rise,
    passiveOnly: cfg.health.kind === 'none',
    trialBackoffMs: cfg.health.intervalMs,
  };
}
