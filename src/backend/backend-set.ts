import { EventEmitter } from 'node:events';
import { type Clock, monotonicClock } from '../clock.js';
import { checkWeight } from '../config/backend-settings.js';
import type { AllDownPolicy, BackendConfig, ServiceConfig } from '../config/schema.js';
import { LbError } from '../errors.js';
import { Backend, rateTokensAt } from './backend.js';

export interface BackendSetEvents {
  /** A backend became healthy again. */
  up: [backend: Backend];
  /** A backend went down; `reason` says why. */
  down: [backend: Backend, reason: string];
  /** The candidates that strategies pick from, or a weight among them, changed: strategies rebuild. */
  change: [candidates: readonly Backend[]];
  /** Some backend's state changed (health, trial, drain, disable, weight, membership): the pool and the cluster follow. */
  state: [];
  /** A backend left the set (removed at run time). */
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

const MAX_TRIAL_BACKOFF_MS = 60_000;

/**
 * A cluster worker's set follows the primary's: it reports what its dials see
 * and takes health verdicts from `applyState`, never deciding them itself.
 */
export interface Follower {
  dialFailed(b: Backend, cause: string): void;
  dialSucceeded(b: Backend): void;
}

/** Who judges live dial outcomes: this set (rise/fall, circuit), or a primary it follows. */
interface DialJudge {
  failed(b: Backend, cause: string): void;
  succeeded(b: Backend): void;
}

/** Only news goes to the primary: its own rise/fall and circuit logic decide. */
function reportTo(f: Follower): DialJudge {
  return {
    failed(b, cause) {
      b.consecutiveFailures++;
      // The primary acts on a failure only while the backend is up or on trial: a backend
      // already down (all_down = "try-all" dials it anyway) would only flood the channel.
      if (!b.removed && (b.healthy || b.halfOpen)) f.dialFailed(b, cause);
    },
    succeeded(b) {
      // The end of a failure streak, or a half-open trial's success.
      if (b.consecutiveFailures > 0 || b.halfOpen) f.dialSucceeded(b);
      b.consecutiveFailures = 0;
    },
  };
}

/** What the primary tells each worker about one backend. */
export interface BackendState {
  address: string;
  healthy: boolean;
  halfOpen: boolean;
  draining: boolean;
  disabled: boolean;
  weight: number;
  downReason: string | null;
}

/**
 * The only owner of backend state: health, draining, weights and counters.
 * Probes, dials and the pool report to it; it decides, and emits on change only.
 *
 * State a backend starts in: up, but unchecked. Its first probe result applies
 * at once (one failed probe takes it down without waiting for `fall`), which is
 * HAProxy's default `init-state up`. Until then it takes traffic, and any
 * failed dial counts against it as usual.
 */
export class BackendSet extends EventEmitter<BackendSetEvents> {
  private list: Backend[] = [];
  private cands: readonly Backend[] = [];
  /** The candidates' weights when `change` was last emitted. */
  private candWeights: number[] = [];
  private readonly opts: BackendSetOptions;
  private readonly judge: DialJudge;

  /**
   * `follower`: hand health decisions to a primary (a cluster worker): dials
   * are reported to it, and its verdicts arrive by applyState.
   */
  private readonly clock: Clock;

  constructor(
    configs: readonly BackendConfig[],
    opts: BackendSetOptions,
    deps: { clock?: Clock; follower?: Follower | null } = {},
  ) {
    super();
    this.clock = deps.clock ?? monotonicClock;
    const follower = deps.follower ?? null;
    this.opts = { ...opts };
    for (const c of configs) this.list.push(new Backend(c));
    this.judge = follower
      ? reportTo(follower)
      : {
          failed: (b, cause) => this.judgeFailure(b, cause),
          succeeded: (b) => this.judgeSuccess(b),
        };
    this.refreshCandidates();
  }

  /** The primary's view of every backend. */
  snapshot(): BackendState[] {
    return this.list.map((b) => ({
      address: b.address,
      healthy: b.healthy,
      halfOpen: b.halfOpen,
      draining: b.draining,
      disabled: b.disabled,
      weight: b.weight,
      downReason: b.downReason,
    }));
  }

  /**
   * Takes the primary's verdicts. Returns the backends that became disabled
   * here (the caller ends their sessions). Unknown addresses are ignored: a
   * backend the primary has and this set does not yet is added by a reload.
   */
  applyState(states: readonly BackendState[]): Backend[] {
    const disabled: Backend[] = [];
    const went: [Backend, boolean][] = [];
    let changed = false;
    for (const st of states) {
      const b = this.get(st.address);
      if (!b || sameState(b, st)) continue;
      changed = true;
      if (st.healthy && !b.healthy) b.upSince = this.clock.now();
      if (st.healthy !== b.healthy) went.push([b, st.healthy]);
      if (st.disabled && !b.disabled) disabled.push(b);
      b.healthy = st.healthy;
      b.downReason = st.downReason;
      if (st.halfOpen !== b.halfOpen) b.trialInFlight = false;
      b.halfOpen = st.halfOpen;
      b.draining = st.draining;
      b.disabled = st.disabled;
      b.weight = st.weight;
    }
    if (changed) this.commit();
    // The pool listens for these (refill on up, drop idle sockets on down).
    for (const [b, up] of went) {
      if (up) this.emit('up', b);
      else this.emit('down', b, b.downReason ?? 'down');
    }
    return disabled;
  }

  get all(): readonly Backend[] {
    return this.list;
  }

  /**
   * What strategies pick from: healthy (or half-open, trial not yet taken)
   * primaries that are not draining; if none, such backups; if none and
   * all_down = "try-all", every backend not draining (a health verdict can be
   * stale, a dial is cheap); else nothing.
   */
  get candidates(): readonly Backend[] {
    return this.cands;
  }

  /** True while at least one backend is healthy and in rotation. */
  get anyHealthy(): boolean {
    return this.list.some((b) => b.healthy && !b.draining && !b.disabled);
  }

  get(address: string): Backend | undefined {
    return this.list.find((b) => b.address === address);
  }

  add(cfg: BackendConfig): Backend {
    if (this.get(cfg.address)) {
      throw new LbError('LB_ERR_DUPLICATE_BACKEND', `backend ${cfg.address} already exists`);
    }
    const b = new Backend(cfg);
    this.list.push(b);
    this.commit();
    return b;
  }

  remove(address: string): Backend {
    const b = this.require(address);
    b.removed = true;
    b.draining = true;
    this.clearTrial(b);
    this.list = this.list.filter((x) => x !== b);
    this.commit();
    this.emit('removed', b);
    return b;
  }

  /** Throws LB_ERR_INVALID_ARGUMENT for a weight outside 1..1,000,000 (the config file's rule). */
  setWeight(address: string, weight: number): Backend {
    const w = checkWeight(weight);
    const b = this.require(address);
    if (b.weight !== w) {
      b.weight = w;
      this.commit();
    }
    return b;
  }

  setDraining(address: string, draining: boolean): Backend {
    const b = this.require(address);
    if (b.draining !== draining) {
      b.draining = draining;
      this.commit();
    }
    return b;
  }

  /** Operator maintenance: out of rotation until enabled. The caller ends its open sessions. */
  setDisabled(address: string, disabled: boolean): Backend {
    const b = this.require(address);
    if (b.disabled !== disabled) {
      b.disabled = disabled;
      this.commit();
    }
    return b;
  }

  /**
   * A reload changed this backend's settings: apply them in place, keeping its
   * health, counters and warm pool.
   */
  reconfigure(cfg: BackendConfig): Backend {
    const b = this.require(cfg.address);
    const changed = b.weight !== cfg.weight || b.backup !== cfg.backup;
    b.weight = cfg.weight;
    b.backup = cfg.backup;
    b.maxConnections = cfg.maxConnections;
    if (b.maxRate !== cfg.maxRate) {
      b.maxRate = cfg.maxRate;
      b.rateTokens = cfg.maxRate;
    }
    b.slowStartMs = cfg.slowStartMs;
    if (changed) this.commit();
    return b;
  }

  /** New fall/rise/circuit settings from a reload. */
  setOptions(opts: BackendSetOptions): void {
    Object.assign(this.opts, opts);
    this.refreshCandidates();
  }

  /** An active probe's verdict. */
  reportProbe(b: Backend, ok: boolean, detail: string, latencyMs: number): void {
    const first = b.lastCheck === null;
    b.lastCheck = { ok, detail, latencyMs, at: Date.now() };
    if (b.removed) return;
    if (ok) {
      b.consecutiveFailures = 0;
      if (b.healthy) return;
      b.consecutiveSuccesses++;
      if (b.consecutiveSuccesses >= this.opts.rise) this.markUp(b);
      return;
    }
    b.consecutiveSuccesses = 0;
    b.consecutiveFailures++;
    if (b.healthy && (first || b.consecutiveFailures >= this.opts.fall)) {
      this.markDown(b, `probe: ${detail}`);
    }
  }

  /**
   * A live dial (or pool refill) connected. It clears the failure streak of a
   * healthy backend, and closes the circuit after a half-open trial; it never
   * brings back a backend that active probes hold down.
   */
  reportDialSuccess(b: Backend): void {
    this.judge.succeeded(b);
  }

  /** A live dial (or pool refill) failed: a passive health signal, counted like a probe failure. */
  recordDialFailure(b: Backend, cause: string): void {
    b.dialFailuresTotal++;
    this.judge.failed(b, cause);
  }

  private judgeSuccess(b: Backend): void {
    b.consecutiveFailures = 0;
    if (b.halfOpen) {
      this.clearTrial(b);
      this.markUp(b);
    }
  }

  private judgeFailure(b: Backend, cause: string): void {
    b.consecutiveSuccesses = 0;
    b.consecutiveFailures++;
    if (b.removed) return;
    if (b.halfOpen) {
      // The trial failed: stay open, wait twice as long for the next one.
      b.halfOpen = false;
      b.trialInFlight = false;
      b.trialBackoffMs = Math.min(b.trialBackoffMs * 2, MAX_TRIAL_BACKOFF_MS);
      b.downReason = `dial: ${cause}`;
      this.scheduleTrial(b);
      this.commit();
      return;
    }
    if (b.healthy && b.consecutiveFailures >= this.opts.fall) this.markDown(b, `dial: ${cause}`);
  }

  /** The dialer picked a half-open backend: it is the one trial; keep others off it until the verdict. */
  beginTrial(b: Backend): void {
    if (!b.halfOpen || b.trialInFlight) return;
    b.trialInFlight = true;
    this.commit();
  }

  /**
   * A session was just sent to `b`: it holds one of b's max_connections slots
   * from now (so concurrent dials cannot overshoot the cap) and spends a
   * max_rate token. Undone by `release` if the dial fails.
   */
  reserve(b: Backend, now: number): void {
    b.active++;
    if (b.maxRate > 0) {
      b.rateTokens = rateTokensAt(b, now) - 1;
      b.rateAt = now;
    }
  }

  /** A reserved slot whose dial failed or whose client left before the backend was ready. */
  release(b: Backend): void {
    b.active--;
  }

  /** An open session was cut by an error or reset on b's side. */
  sessionAborted(b: Backend): void {
    b.sessionsAbortedTotal++;
  }

  /** The reserved session is spliced to `b`. */
  sessionOpened(b: Backend): void {
    b.sessionsTotal++;
  }

  sessionClosed(b: Backend, bytesFromBackend: number, bytesToBackend: number): void {
    b.active--;
    b.bytesFromBackend += bytesFromBackend;
    b.bytesToBackend += bytesToBackend;
  }

  markDown(b: Backend, reason: string): void {
    if (!b.healthy) return;
    b.healthy = false;
    b.downReason = reason;
    b.consecutiveSuccesses = 0;
    if (this.opts.passiveOnly) {
      b.trialBackoffMs = this.opts.trialBackoffMs;
      this.scheduleTrial(b);
    }
    this.commit();
    this.emit('down', b, reason);
  }

  markUp(b: Backend): void {
    if (b.healthy) return;
    b.healthy = true;
    b.downReason = null;
    b.consecutiveFailures = 0;
    b.upSince = this.clock.now();
    this.clearTrial(b);
    this.commit();
    this.emit('up', b);
  }

  /** Stops the half-open timers; the set is being discarded. */
  close(): void {
    for (const b of this.list) this.clearTrial(b);
  }

  private scheduleTrial(b: Backend): void {
    if (b.trialTimer) clearTimeout(b.trialTimer);
    b.trialTimer = setTimeout(() => {
      b.trialTimer = null;
      if (b.healthy || b.removed) return;
      b.halfOpen = true;
      b.trialInFlight = false;
      this.commit();
    }, b.trialBackoffMs);
    b.trialTimer.unref();
  }

  private clearTrial(b: Backend): void {
    if (b.trialTimer) clearTimeout(b.trialTimer);
    b.trialTimer = null;
    b.halfOpen = false;
    b.trialInFlight = false;
  }

  private require(address: string): Backend {
    const b = this.get(address);
    if (!b) throw new LbError('LB_ERR_UNKNOWN_BACKEND', `no backend ${address}`);
    return b;
  }

  /** A backend's state changed: everyone who follows state hears it, strategies only if their input moved. */
  private commit(): void {
    this.refreshCandidates();
    this.emit('state');
  }

  /**
   * Recomputes the candidates and emits `change` only when the list or a
   * weight in it really changed (HAProxy's srv_update_status returns early in
   * the same way), so a no-op reload or broadcast costs no Maglev rebuild and
   * keeps round-robin's place.
   */
  private refreshCandidates(): void {
    const usable = (b: Backend): boolean =>
      !b.draining && !b.disabled && (b.healthy || (b.halfOpen && !b.trialInFlight));
    let c = this.list.filter((b) => usable(b) && !b.backup);
    if (c.length === 0) c = this.list.filter((b) => usable(b) && b.backup);
    if (c.length === 0 && this.opts.allDown === 'try-all')
      c = this.list.filter((b) => !b.draining && !b.disabled);
    if (sameCandidates(c, this.cands, this.candWeights)) return;
    this.cands = Object.freeze(c);
    this.candWeights = c.map((b) => b.weight);
    this.emit('change', this.cands);
  }
}

function sameCandidates(
  next: readonly Backend[],
  prev: readonly Backend[],
  weights: readonly number[],
): boolean {
  if (next.length !== prev.length) return false;
  for (let i = 0; i < next.length; i++) {
    const b = next[i] as Backend;
    if (b !== prev[i] || b.weight !== weights[i]) return false;
  }
  return true;
}

function sameState(b: Backend, st: BackendState): boolean {
  return (
    b.healthy === st.healthy &&
    b.halfOpen === st.halfOpen &&
    b.draining === st.draining &&
    b.disabled === st.disabled &&
    b.weight === st.weight &&
    b.downReason === st.downReason
  );
}
