import { type Backend, type BackendEntry, entryOf } from './backend.js';
import type { ConnectFailure } from './causes.js';
import type { DialJudge } from './follow.js';

/** The settings verdicts read (BackendSetOptions, shared and updated by reloads). */
export interface VerdictOptions {
  readonly fall: number;
  readonly rise: number;
  readonly trialBackoffMs: number;
}

/** What a verdict does to the set that owns it. */
export interface VerdictTarget {
  markUp(b: Backend): void;
  markDown(b: Backend, reason: string): void;
  /** Some state changed in place (a trial opened or failed): recompute and tell followers. */
  changed(): void;
}

const MAX_TRIAL_BACKOFF_MS = 60_000;

/** A reason a check gave (a probe's or a live dial's), which a later check may replace. */
function isCheckReason(r: string | null): boolean {
  return r === null || r.startsWith('probe: ') || r.startsWith('dial: ');
}

/**
 * Health verdicts decided in this process (not a cluster worker): rise/fall
 * over probe results and live dial outcomes, and the circuit breaker of
 * health kind "none" (down → a half-open trial after a backoff that doubles
 * per failed trial → up on the trial's success). Owned by BackendSet, the
 * only caller, as part of the one owner of backend state.
 */
export class LocalVerdicts implements DialJudge {
  constructor(
    private readonly opts: VerdictOptions,
    private readonly set: VerdictTarget,
  ) {}

  /** `first`: the backend's first probe, which applies at once (HAProxy's init-state up). */
  probe(b: BackendEntry, ok: boolean, detail: string, first: boolean): void {
    if (ok) {
      b.consecutiveFailures = 0;
      if (b.healthy) return;
      b.consecutiveSuccesses++;
      if (b.consecutiveSuccesses >= this.opts.rise) this.set.markUp(b);
      return;
    }
    b.consecutiveSuccesses = 0;
    b.consecutiveFailures++;
    const reason = `probe: ${detail}`;
    if (b.healthy) {
      if (first || b.consecutiveFailures >= this.opts.fall) this.set.markDown(b, reason);
      return;
    }
    // Already down: the reason follows the latest failing check (ECONNREFUSED, then a TLS
    // failure, shows the TLS failure). An operator's or the agent's word is not a check's.
    if (b.downReason !== reason && isCheckReason(b.downReason) && !b.agentDown) {
      b.downReason = reason;
      this.set.changed();
    }
  }

  succeeded(backend: Backend): void {
    const b = entryOf(backend);
    b.consecutiveFailures = 0;
    if (b.halfOpen) {
      this.clearTrial(b);
      this.set.markUp(b);
    }
  }

  failed(backend: Backend, failure: ConnectFailure): void {
    const b = entryOf(backend);
    const cause = failure.detail;
    b.consecutiveSuccesses = 0;
    b.consecutiveFailures++;
    if (b.removed) return;
    if (b.halfOpen) {
      // The trial failed: stay open, wait twice as long for the next one.
      b.enter('down');
      b.trialBackoffMs = Math.min(b.trialBackoffMs * 2, MAX_TRIAL_BACKOFF_MS);
      b.downReason = `dial: ${cause}`;
      this.scheduleTrial(b);
      this.set.changed();
      return;
    }
    if (b.healthy && b.consecutiveFailures >= this.opts.fall)
      this.set.markDown(b, `dial: ${cause}`);
  }

  /** A backend just went down with no active probes: its first trial comes after trialBackoffMs. */
  openCircuit(b: BackendEntry): void {
    b.trialBackoffMs = this.opts.trialBackoffMs;
    this.scheduleTrial(b);
  }

  clearTrial(b: BackendEntry): void {
    if (b.trialTimer) clearTimeout(b.trialTimer);
    b.trialTimer = null;
    if (b.halfOpen) b.enter('down');
  }

  private scheduleTrial(b: BackendEntry): void {
    if (b.trialTimer) clearTimeout(b.trialTimer);
    b.trialTimer = setTimeout(() => {
      b.trialTimer = null;
      if (b.healthy || b.removed) return;
      b.enter('half-open');
      this.set.changed();
    }, b.trialBackoffMs);
    b.trialTimer.unref();
  }
}
