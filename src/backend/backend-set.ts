import { EventEmitter } from 'node:events';
import type { AllDownPolicy, BackendConfig } from '../config/schema.js';
import { LbError } from '../errors.js';
import { Backend } from './backend.js';

export interface BackendSetEvents {
  /** A backend became healthy again. */
  up: [backend: Backend];
  /** A backend went down; `reason` says why. */
  down: [backend: Backend, reason: string];
  /** The list of candidates that strategies pick from changed. */
  change: [candidates: readonly Backend[]];
}

export interface BackendSetOptions {
  allDown: AllDownPolicy;
  /** Consecutive failures that take a healthy backend down. */
  fall: number;
  /** Consecutive successes that bring a down backend back. */
  rise: number;
}

/**
 * The only owner of backend state: health, draining, weights and counters.
 * Everything else reports to it; it decides and emits on change only.
 *
 * A backend starts healthy: it takes traffic from the first moment, as with
 * HAProxy's default, and the first probe or failed dial corrects that.
 */
export class BackendSet extends EventEmitter<BackendSetEvents> {
  private list: Backend[] = [];
  private cands: readonly Backend[] = [];
  private readonly opts: BackendSetOptions;

  constructor(configs: readonly BackendConfig[], opts: BackendSetOptions) {
    super();
    this.opts = opts;
    for (const c of configs) this.list.push(new Backend(c));
    this.recompute();
  }

  get all(): readonly Backend[] {
    return this.list;
  }

  /**
   * What strategies pick from: healthy primaries that are not draining; if
   * none, healthy backups; if none and all_down = "try-all", every backend
   * not draining (a probe may be wrong, a dial costs little); else nothing.
   */
  get candidates(): readonly Backend[] {
    return this.cands;
  }

  /** True while at least one primary or backup is healthy and not draining. */
  get anyHealthy(): boolean {
    return this.list.some((b) => b.healthy && !b.draining);
  }

  get(address: string): Backend | undefined {
    return this.list.find((b) => b.address === address);
  }

  add(cfg: BackendConfig): Backend {
    if (this.get(cfg.address))
      throw new LbError('LB_ERR_DUPLICATE_BACKEND', `backend ${cfg.address} already exists`);
    const b = new Backend(cfg);
    this.list.push(b);
    this.recompute();
    return b;
  }

  remove(address: string): Backend {
    const b = this.require(address);
    b.removed = true;
    b.draining = true;
    this.list = this.list.filter((x) => x !== b);
    this.recompute();
    return b;
  }

  setWeight(address: string, weight: number): Backend {
    if (!Number.isInteger(weight) || weight < 1)
      throw new LbError(
        'LB_ERR_STATE',
        `weight must be a whole number of 1 or more, got ${weight}`,
      );
    const b = this.require(address);
    b.weight = weight;
    this.recompute();
    return b;
  }

  setDraining(address: string, draining: boolean): Backend {
    const b = this.require(address);
    if (b.draining !== draining) {
      b.draining = draining;
      this.recompute();
    }
    return b;
  }

  /** A probe or a live dial succeeded. */
  reportSuccess(b: Backend): void {
    b.consecutiveFailures = 0;
    if (b.healthy) return;
    b.consecutiveSuccesses++;
    if (b.consecutiveSuccesses >= this.opts.rise) this.markUp(b);
  }

  /** A probe or a live dial failed with `cause`. */
  reportFailure(b: Backend, cause: string): void {
    b.consecutiveSuccesses = 0;
    b.consecutiveFailures++;
    if (b.healthy && b.consecutiveFailures >= this.opts.fall) this.markDown(b, cause);
  }

  /** Counts a live dial failure against the backend (a passive health signal). */
  recordDialFailure(b: Backend, cause: string): void {
    b.dialFailuresTotal++;
    this.reportFailure(b, `dial: ${cause}`);
  }

  sessionOpened(b: Backend): void {
    b.active++;
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
    this.recompute();
    this.emit('down', b, reason);
  }

  markUp(b: Backend): void {
    if (b.healthy) return;
    b.healthy = true;
    b.downReason = null;
    b.consecutiveFailures = 0;
    this.recompute();
    this.emit('up', b);
  }

  private require(address: string): Backend {
    const b = this.get(address);
    if (!b) throw new LbError('LB_ERR_UNKNOWN_BACKEND', `no backend ${address}`);
    return b;
  }

  private recompute(): void {
    let c = this.list.filter((b) => b.healthy && !b.draining && !b.backup);
    if (c.length === 0) c = this.list.filter((b) => b.healthy && !b.draining && b.backup);
    if (c.length === 0 && this.opts.allDown === 'try-all') c = this.list.filter((b) => !b.draining);
    this.cands = Object.freeze(c);
    this.emit('change', this.cands);
  }
}
