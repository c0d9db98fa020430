import type { Backend } from '../backend/backend.js';
import type { BackendState } from '../backend/backend-set.js';
import type { BackendConfig } from '../config/schema.js';
import { DiscoveryDriver } from '../discovery/index.js';
import type { TerminationCause } from '../proxy/session-host.js';
import type { ServiceCore } from './core.js';

/** What the backend operations need beyond the core: the sessions to end, the probes to run. */
export interface BackendOpsDeps {
  readonly core: ServiceCore;
  /** A backend's settings changed in a way that emits no state of its own (workers need it too). */
  reconfigured(): void;
  /** Ends the open sessions on one backend now; how many (0 where this process has no sessions). */
  endSessionsOn(address: string, cause?: TerminationCause): number;
  /** Runs one round of health probes now (nothing where this process runs none). */
  probeAll(): void;
}

/**
 * The one way a service's backends change (LoadBalancer, the admin API, the
 * agent check, discovery, a reload and a cluster worker's follow-up all come
 * here), and what the service does when one goes down or comes back up.
 * Probes follow membership by BackendSet's 'added' and 'removed' events, not
 * by calls from here.
 */
export class BackendOps {
  private readonly core: ServiceCore;
  /** Applies discovered lists through these operations (here or, in a worker, the primary's lists). */
  readonly discovered: DiscoveryDriver;

  constructor(private readonly deps: BackendOpsDeps) {
    const core = deps.core;
    this.core = core;
    this.discovered = new DiscoveryDriver({
      get: (address) => core.backends.get(address),
      add: (c, joining) => this.add(c, joining),
      reconfigure: (c) => {
        core.backends.reconfigure(c);
        deps.reconfigured();
      },
      drain: (address) => this.drain(address),
      undrain: (address) => core.backends.setDraining(address, false),
      remove: (address) => this.remove(address),
      statics: () => core.cfg.backends,
    });
    // A worker hears the primary's verdicts as the same events (applyState), so this holds in every role.
    this.core.backends.on('down', (b) => this.onDown(b));
    this.core.backends.on('up', (b) => this.onUp(b));
  }

  /**
   * A new backend: it takes traffic at once, and is probed and pooled like
   * the others. `joining`: it ramps up through its slow_start (a discovered
   * backend that arrives after the first answer).
   */
  add(cfg: BackendConfig, joining = false): Backend {
    return this.core.backends.add(cfg, joining);
  }

  /** No new sessions go to it; its open sessions run to their end. */
  remove(address: string): Backend {
    return this.core.backends.remove(address);
  }

  setWeight(address: string, weight: number): Backend {
    return this.core.backends.setWeight(address, weight);
  }

  /** No new sessions; open ones continue. */
  drain(address: string): Backend {
    return this.core.backends.setDraining(address, true);
  }

  /** Maintenance: out of rotation, warm pool closed, its open sessions ended now. */
  disable(address: string): Backend {
    const b = this.core.backends.setDisabled(address, true);
    this.deps.endSessionsOn(b.address);
    return b;
  }

  /** Ends a drain or a disable. */
  enable(address: string): Backend {
    this.core.backends.setDisabled(address, false);
    return this.core.backends.setDraining(address, false);
  }

  /** An operator's word on a backend's health; probes decide again afterwards unless paused. */
  forceHealth(address: string, up: boolean): Backend {
    return this.core.backends.forceHealth(address, up);
  }

  /** Stops (or resumes) probing one backend; its health stays as it is meanwhile. */
  pauseChecks(address: string, paused: boolean): Backend {
    const b = this.core.backends.pauseChecks(address, paused);
    // Resumed: a probe now, not an interval later.
    if (!paused) this.deps.probeAll();
    return b;
  }

  /** The file's backends; discovered ones are discovery's (it re-applies its last list against these). */
  syncFile(configs: readonly BackendConfig[]): void {
    const { backends } = this.core;
    this.removeAllBut(configs);
    for (const bc of configs) {
      if (backends.get(bc.address)) backends.reconfigure(bc);
      else this.add(bc);
    }
    this.discovered.reconcile();
  }

  /**
   * A cluster worker follows the primary's membership (MembersMap): backends
   * the admin API added there are added here, and those it removed are
   * removed (their open sessions run to their end). Discovered backends are
   * discovery's (applyDiscovered), never removed here.
   */
  followMembers(list: readonly BackendConfig[]): void {
    this.removeAllBut(list);
    for (const c of list) if (!this.core.backends.get(c.address)) this.add(c);
  }

  /** A worker takes the primary's verdicts; a backend disabled there loses its sessions here too. */
  applyState(states: readonly BackendState[]): void {
    for (const b of this.core.backends.applyState(states)) this.deps.endSessionsOn(b.address);
  }

  /**
   * The weight an agent's "75%" is a share of: the file's, or discovery's
   * (never b.weight, which the agent's last percentage set: "50%" then
   * "100%" would stay at half). An admin-added backend keeps its own.
   */
  baseWeight(b: Backend): number {
    const c =
      this.core.cfg.backends.find((x) => x.address === b.address) ??
      this.discovered.configured(b.address);
    return c?.weight ?? b.weight;
  }

  /** Removes every backend not in `keep` that discovery does not own. */
  private removeAllBut(keep: readonly BackendConfig[]): void {
    const want = new Set(keep.map((c) => c.address));
    for (const b of [...this.core.backends.all])
      if (!want.has(b.address) && !this.discovered.owns(b.address)) this.remove(b.address);
  }

  /** health.on_down = "shutdown-sessions": a backend marked down loses its open sessions. */
  private onDown(b: Backend): void {
    const { cfg, stats, log } = this.core;
    if (cfg.health.onDown !== 'shutdown-sessions') return;
    const n = this.deps.endSessionsOn(b.address, 'backend-down');
    stats.counters.endedBackendDown += n;
    if (n > 0) log.info({ backend: b.address, sessions: n }, 'on_down: sessions ended');
  }

  /** health.on_up_primary = "shutdown-backup-sessions": a primary back in rotation takes the backups' clients. */
  private onUp(b: Backend): void {
    const { cfg, stats, log, backends } = this.core;
    if (cfg.health.onUpPrimary !== 'shutdown-backup-sessions') return;
    if (b.backup || b.draining || b.disabled) return;
    let n = 0;
    for (const x of backends.all)
      if (x.backup) n += this.deps.endSessionsOn(x.address, 'primary-back');
    stats.counters.endedPrimaryBack += n;
    if (n > 0)
      log.info({ backend: b.address, sessions: n }, 'on_up_primary: backup sessions ended');
  }
}
