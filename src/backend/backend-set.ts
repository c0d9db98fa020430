import { type Clock, monotonicClock } from '../clock.js';
import { literalTwins } from '../config/address.js';
import { checkWeight } from '../config/backend-settings.js';
import type { BackendConfig } from '../config/schema.js';
import { LbError } from '../errors.js';
import { Admin, type Backend, BackendEntry, entryOf, rateTokensAt } from './backend.js';
import { candidatesOf, sameCandidates } from './candidates.js';
import { type BackendState, type Follower, sameState, stateOf } from './follow.js';
import { BackendHealth, healthChanged } from './health.js';
import { SlotLease } from './lease.js';
import type { BackendSetOptions } from './set-types.js';

export type { BackendState, Follower } from './follow.js';
export { type BackendSetEvents, type BackendSetOptions, setOptionsOf } from './set-types.js';

/**
 * The only owner of backend state: health, draining, weights and counters.
 * Probes, dials and the pool report to it; it decides, and emits on change only.
 *
 * State a backend starts in: up, but unchecked. Its first probe result applies
 * at once (one failed probe takes it down without waiting for `fall`), which is
 * HAProxy's default `init-state up`. Until then it takes traffic, and any
 * failed dial counts against it as usual.
 */
export class BackendSet extends BackendHealth {
  private list: BackendEntry[] = [];
  private cands: readonly Backend[] = [];
  /** The candidates' weights when `change` was last emitted. */
  private candWeights: number[] = [];

  /**
   * `follower`: hand health decisions to a primary (a cluster worker): dials
   * are reported to it, and its verdicts arrive by applyState.
   */
  constructor(
    configs: readonly BackendConfig[],
    opts: BackendSetOptions,
    deps: { clock?: Clock; follower?: Follower | null } = {},
  ) {
    super(opts, deps.clock ?? monotonicClock, deps.follower ?? null);
    for (const c of configs) this.list.push(new BackendEntry(c));
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
      const b = this.entry(st.address);
      if (!b || sameState(b, st)) continue;
      changed = true;
      if (st.healthy && !b.healthy) b.upSince = this.clock.now();
      if (st.healthy !== b.healthy) {
        went.push([b, st.healthy]);
        healthChanged(b, st.healthy);
      }
      if (st.disabled && !b.disabled) disabled.push(b);
      // A trial under way stays one while the primary still says half-open.
      b.enter(st.healthy ? 'up' : !st.halfOpen ? 'down' : b.trialInFlight ? 'trial' : 'half-open');
      b.downReason = st.downReason;
      b.setAdmin(Admin.DRAIN, st.draining);
      b.setAdmin(Admin.MAINT, st.disabled);
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
    return this.entry(address);
  }

  private entry(address: string): BackendEntry | undefined {
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
    const b = new BackendEntry(cfg);
    if (joining) b.upSince = this.clock.now();
    this.list.push(b);
    this.commit();
    this.emit('added', b);
    return b;
  }

  remove(address: string): Backend {
    const b = this.require(address);
    b.setAdmin(Admin.REMOVED, true);
    b.setAdmin(Admin.DRAIN, true);
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
    if (b.setAdmin(Admin.DRAIN, draining)) this.commit();
    return b;
  }

  /** Operator maintenance: out of rotation until enabled. The caller ends its open sessions. */
  setDisabled(address: string, disabled: boolean): Backend {
    const b = this.require(address);
    if (b.setAdmin(Admin.MAINT, disabled)) this.commit();
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
    if (changed) this.commit();
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
    if (b.setAdmin(Admin.CHECKS_PAUSED, paused)) this.emit('state');
    return b;
  }

  /**
   * A session was just sent to `b`: it holds one of b's max_connections slots
   * from now (so concurrent dials cannot overshoot the cap) and spends a
   * max_rate token. The slot comes back by the lease's `end()`: the dial
   * failed, the client left first, or the session on it ended.
   */
  reserve(backend: Backend, now: number): SlotLease {
    const b = entryOf(backend);
    b.active++;
    if (b.maxRate > 0) {
      b.rateTokens = rateTokensAt(b, now) - 1;
      b.rateAt = now;
    }
    return new SlotLease(b);
  }

  /** An open session was cut by an error or reset on b's side. */
  sessionAborted(b: Backend): void {
    entryOf(b).sessionsAbortedTotal++;
  }

  /** The reserved session is spliced to `b`. */
  sessionOpened(b: Backend): void {
    entryOf(b).sessionsTotal++;
  }

  /** Stops the half-open timers; the set is being discarded. */
  close(): void {
    for (const b of this.list) this.verdicts.clearTrial(b);
  }

  protected require(address: string): BackendEntry {
    const b = this.entry(address);
    if (!b) throw new LbError('LB_ERR_UNKNOWN_BACKEND', `no backend ${address}`);
    return b;
  }

  /** A backend's state changed: everyone who follows state hears it, strategies only if their input moved. */
  protected commit(): void {
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
