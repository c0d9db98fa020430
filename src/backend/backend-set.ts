import { EventEmitter } from 'node:events';
import { type Clock, monotonicClock } from '../clock.js';
import { literalTwins } from '../config/address.js';
import { checkWeight } from '../config/backend-settings.js';
import type { AllDownPolicy, BackendConfig, ServiceConfig } from '../config/schema.js';
import { LbError } from '../errors.js';
import { Histogram } from '../histogram.js';
import { Backend, rateTokensAt } from './backend.js';
import { namedIn } from './backend-ref.js';
import { candidatesOf, sameCandidates } from './candidates.js';
import { type ConnectFailure, probeCauseOf } from './causes.js';
import {
  type BackendState,
  type DialJudge,
  type Follower,
  reportTo,
  sameState,
  stateOf,
} from './follow.js';
import { SlotLease } from './lease.js';
import { LocalVerdicts } from './verdicts.js';

export type { BackendState, Follower } from './follow.js';

/** Probe durations: 0.5 ms to 10 s. */
const PROBE_BUCKETS = Object.freeze([
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]);

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
  private readonly verdicts: LocalVerdicts;
  private readonly clock: Clock;
  /** How long probes took, successes and failures alike (read by /metrics). */
  readonly probeSeconds = new Histogram(PROBE_BUCKETS);

  /**
   * `follower`: hand health decisions to a primary (a cluster worker): dials
   * are reported to it, and its verdicts arrive by applyState.
   */
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
    this.verdicts = new LocalVerdicts(this.opts, {
      markUp: (b) => this.markUp(b),
      markDown: (b, reason) => this.markDown(b, reason),
      changed: () => this.commit(),
    });
    this.judge = follower ? reportTo(follower) : this.verdicts;
    this.refreshCandidates();
  }

  /** The primary's view of every backend. */
  snapshot(): BackendState[] {
    return this.list.map(stateOf);
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
      if (st.healthy !== b.healthy) {
        went.push([b, st.healthy]);
        healthChanged(b, st.healthy);
      }
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

  /** What strategies pick from (see candidatesOf). */
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

  /** The backend already here that a name is known to be ("localhost:80" for "127.0.0.1:80"), if any. */
  twinOf(cfg: { readonly host: string; readonly port: number }): string | null {
    return literalTwins(cfg.host, cfg.port).find((a) => this.get(a)) ?? null;
  }

  /** `joining`: ramp up through slow_start from now, as a backend coming back up does. */
  add(cfg: BackendConfig, joining = false): Backend {
    if (this.get(cfg.address)) {
      throw new LbError('LB_ERR_DUPLICATE_BACKEND', `backend ${cfg.address} already exists`);
    }
    const twin = this.twinOf(cfg);
    if (twin)
      throw new LbError(
        'LB_ERR_DUPLICATE_BACKEND',
        `backend ${cfg.address} is ${twin}, which already exists`,
      );
    const b = new Backend(cfg);
    if (joining) b.upSince = this.clock.now();
    this.list.push(b);
    this.commit();
    this.emit('added', b);
    return b;
  }

  remove(address: string): Backend {
    const b = this.require(address);
    b.removed = true;
    b.draining = true;
    this.verdicts.clearTrial(b);
    this.list = this.list.filter((x) => x !== b);
    this.commit();
    this.emit('removed', b);
    return b;
  }

  /** Throws LB_ERR_INVALID_ARGUMENT for a weight outside 0..1,000,000 (the config file's rule; 0 is a soft stop). */
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
    b.configuredWeight = cfg.weight;
    b.backup = cfg.backup;
    b.maxConnections = cfg.maxConnections;
    if (b.maxRate !== cfg.maxRate) {
      b.maxRate = cfg.maxRate;
      b.rateTokens = cfg.maxRate;
    }
    b.slowStartMs = cfg.slowStartMs;
    b.zone = cfg.zone ?? null;
    // A rename keeps the backend (its sessions, counters, pool): identity is the address.
    const renamed = b.name !== (cfg.name ?? cfg.address);
    b.name = cfg.name ?? cfg.address;
    if (changed || renamed) this.commit();
    return b;
  }

  /** New fall/rise/circuit settings from a reload. */
  setOptions(opts: BackendSetOptions): void {
    const wasPassive = this.opts.passiveOnly;
    Object.assign(this.opts, opts);
    if (opts.passiveOnly === wasPassive) {
      this.refreshCandidates();
      return;
    }
    // Probes turned off: a backend already down gets its half-open trials, or it would stay down
    // for good. Probes turned on: they decide from now; trials end.
    for (const b of this.list) {
      if (!opts.passiveOnly) this.verdicts.clearTrial(b);
      else if (!b.healthy && !b.removed) this.verdicts.openCircuit(b);
    }
    this.commit();
  }

  /** An active probe's verdict. */
  reportProbe(b: Backend, ok: boolean, detail: string, latencyMs: number): void {
    const first = b.lastCheck === null;
    b.lastCheck = { ok, detail, latencyMs, at: Date.now() };
    this.probeSeconds.observe(latencyMs / 1000);
    if (!ok) {
      b.lastFailure = { detail, at: b.lastCheck.at };
      b.probeFailures[probeCauseOf(detail)]++;
    }
    if (!b.removed && !b.checksPaused) this.verdicts.probe(b, ok, detail, first);
  }

  /**
   * An operator's word on health ("set server health" in HAProxy): up or
   * down now. Probes go on deciding afterwards unless paused (pauseChecks).
   */
  forceHealth(address: string, up: boolean): Backend {
    const b = this.require(address);
    if (up) {
      b.agentDown = false;
      b.consecutiveFailures = 0;
      this.markUp(b);
    } else {
      b.consecutiveSuccesses = 0;
      this.markDown(b, 'forced down by operator');
    }
    return b;
  }

  /** Paused: probe results no longer change its health (it keeps the one it has). */
  pauseChecks(address: string, paused: boolean): Backend {
    const b = this.require(address);
    if (b.checksPaused !== paused) {
      b.checksPaused = paused;
      this.emit('state');
    }
    return b;
  }

  /** The agent check's last contact (see health/agent.ts). */
  reportAgent(b: Backend, ok: boolean, detail: string): void {
    b.lastAgent = { ok, detail, at: Date.now() };
  }

  /**
   * The agent's health word. `reason` set: down now and held down, probes or
   * not, until released. null: released; back up at once unless the last
   * probe failed (then probes bring it back after `rise`, as usual).
   */
  holdDown(b: Backend, reason: string | null): void {
    if (b.removed) return;
    if (reason !== null) {
      b.agentDown = true;
      this.markDown(b, reason);
      // No half-open trials (health kind "none") while the agent holds it down.
      this.verdicts.clearTrial(b);
      return;
    }
    if (!b.agentDown) return;
    b.agentDown = false;
    if (b.lastCheck === null || b.lastCheck.ok) this.markUp(b);
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
  recordDialFailure(b: Backend, failure: ConnectFailure): void {
    b.dialFailuresTotal++;
    b.dialFailures[failure.kind]++;
    this.judge.failed(b, failure);
  }

  /** A dial to `b` failed on the balancer's own resources (EMFILE…): counted, never held against it. */
  recordLocalDialFailure(b: Backend): void {
    b.dialFailures.local++;
    this.abandonTrial(b);
  }

  /**
   * An HTTP request got a 5xx answer (passive_http_5xx): a passive health
   * failure like a failed dial, without counting as one in dial_failures_total.
   */
  recordHttpFailure(b: Backend, cause: string): void {
    this.judge.failed(b, { kind: 'other', detail: cause });
  }

  /**
   * A trial dial ended with no verdict (its client left, or the failure was
   * the balancer's own): the backend is half-open again for the next one.
   */
  abandonTrial(b: Backend): void {
    if (!b.halfOpen || !b.trialInFlight) return;
    b.trialInFlight = false;
    this.commit();
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
   * max_rate token. The slot comes back by the lease's `end()`: the dial
   * failed, the client left first, or the session on it ended.
   */
  reserve(b: Backend, now: number): SlotLease {
    b.active++;
    if (b.maxRate > 0) {
      b.rateTokens = rateTokensAt(b, now) - 1;
      b.rateAt = now;
    }
    return new SlotLease(b);
  }

  /** An open session was cut by an error or reset on b's side. */
  sessionAborted(b: Backend): void {
    b.sessionsAbortedTotal++;
  }

  /** The reserved session is spliced to `b`. */
  sessionOpened(b: Backend): void {
    b.sessionsTotal++;
  }

  markDown(b: Backend, reason: string): void {
    if (!b.healthy) return;
    b.healthy = false;
    b.downReason = reason;
    b.consecutiveSuccesses = 0;
    healthChanged(b, false);
    if (this.opts.passiveOnly) this.verdicts.openCircuit(b);
    this.commit();
    this.emit('down', b, reason);
  }

  markUp(b: Backend): void {
    if (b.healthy || b.agentDown) return;
    b.healthy = true;
    b.downReason = null;
    b.consecutiveFailures = 0;
    healthChanged(b, true);
    b.upSince = this.clock.now();
    this.verdicts.clearTrial(b);
    this.commit();
    this.emit('up', b);
  }

  /** Stops the half-open timers; the set is being discarded. */
  close(): void {
    for (const b of this.list) this.verdicts.clearTrial(b);
  }

  /** By address, else by name (the admin API's NAME_OR_ADDRESS; see backend/backend-ref.ts). */
  private require(address: string): Backend {
    const b = this.get(address) ?? namedIn(this.list, address);
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
    const c = candidatesOf(this.list, this.opts.allDown);
    if (sameCandidates(c, this.cands, this.candWeights)) return;
    this.cands = Object.freeze(c);
    this.candWeights = c.map((b) => b.weight);
    this.emit('change', this.cands);
  }
}

/** When health changed, and the down time it ends (for /metrics). */
function healthChanged(b: Backend, up: boolean): void {
  const now = Date.now();
  b.stateChangedAt = now;
  if (up && b.downSince > 0) {
    b.downMsBefore += now - b.downSince;
    b.downSince = 0;
  } else if (!up) b.downSince = now;
}
