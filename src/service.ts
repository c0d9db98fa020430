import { type AddressInfo, isIPv6, type Socket } from 'node:net';
import type { Backend } from './backend/backend.js';
import {
  BackendSet,
  type BackendState,
  type Follower,
  setOptionsOf,
} from './backend/backend-set.js';
import { createStrategy, type StrategyOptions } from './balancer/index.js';
import type { Strategy } from './balancer/strategy.js';
import { type Clock, monotonicClock } from './clock.js';
import { sameConfig } from './config/same.js';
import type { BackendConfig, ServiceConfig } from './config/schema.js';
import {
  createDiscovery,
  DiscoveryDriver,
  type DiscoveryRunner,
  type DiscoveryStatus,
} from './discovery/index.js';
import { NoBackendError } from './errors.js';
import { HealthChecker } from './health/checker.js';
import { LocalErrors } from './local-errors.js';
import type { Logger } from './logger.js';
import { WarmPool } from './pool/warm-pool.js';
import { type ServiceCounters, SessionAccounting } from './proxy/accounting.js';
import { Admission } from './proxy/admission.js';
import type { DialAttempt } from './proxy/dial-attempt.js';
import { Dialer, type DialerDeps } from './proxy/dialer.js';
import { EmbeddedDial } from './proxy/embedded-dial.js';
import type { FdBudget } from './proxy/fd-budget.js';
import { Listener } from './proxy/listener.js';
import { OpenSessions } from './proxy/sessions.js';
import { WaitQueue } from './proxy/wait-queue.js';

export type { ServiceCounters } from './proxy/accounting.js';

/**
 * What a Service does in its process. "single": everything. With workers, the
 * primary's services are "control" (health probes and backend state, no
 * listener, no pool) and each worker's are "serve" (listener, sessions and
 * pool, with health verdicts taken from the primary).
 */
export type ServiceRole = 'single' | 'serve' | 'control';

export interface ServiceOptions {
  strategy?: StrategyOptions;
  accessLog?: boolean;
  role?: ServiceRole;
  clock?: Clock;
  /** The process's descriptor reserve (LoadBalancer makes one per process). */
  fds?: FdBudget | null;
  /** "serve" role: where dial outcomes go (the primary). */
  follower?: (service: string) => Follower;
  /** Called whenever a backend's state changes (the primary broadcasts it). */
  onBackendsChanged?: (svc: Service) => void;
}

/**
 * One [services.NAME]: wires its listener, admission, sessions, dialer, wait
 * queue, backends, strategy, health checker and warm pool, and is the one way
 * to change its backends. `applyConfig` changes all of that in place on a
 * reload without touching open sessions.
 */
export class Service implements DialerDeps {
  readonly name: string;
  cfg: ServiceConfig;
  readonly backends: BackendSet;
  strategy: Strategy;
  readonly stats: SessionAccounting;
  readonly log: Logger;
  readonly role: ServiceRole;
  readonly clock: Clock;
  readonly localErrors: LocalErrors;
  readonly fds: FdBudget | null;
  private warmPool: WarmPool;
  private health: HealthChecker;
  /** Bound at start (or handed over by a reload); null in the control role and once given away. */
  private listener: Listener | null = null;
  private readonly sessions: OpenSessions;
  private readonly dialer: Dialer;
  private readonly queue: WaitQueue;
  private readonly admission: Admission;
  private readonly strategyOpts: StrategyOptions;
  /** Applies discovered lists to the backends (here or, in a worker, the primary's). */
  private readonly discovered: DiscoveryDriver;
  /** Looks the backends up ([discovery]); null without one, and in a cluster worker. */
  private discovery: DiscoveryRunner | null = null;
  /** Between start() and stopAccepting(). */
  private running = false;

  constructor(cfg: ServiceConfig, log: Logger, opts: ServiceOptions = {}) {
    this.name = cfg.name;
    this.cfg = cfg;
    this.role = opts.role ?? 'single';
    this.clock = opts.clock ?? monotonicClock;
    this.strategyOpts = opts.strategy ?? {};
    this.log = log.child({ service: cfg.name });
    this.localErrors = new LocalErrors(this.log, this.clock);
    this.fds = opts.fds ?? null;
    this.stats = new SessionAccounting(this.log, opts.accessLog ?? false, this.clock);
    // A worker follows the primary, which decides and logs health.
    const follower = this.role === 'serve' ? (opts.follower?.(cfg.name) ?? null) : null;
    this.backends = new BackendSet(cfg.backends, setOptionsOf(cfg), {
      clock: this.clock,
      follower,
    });
    this.strategy = createStrategy(cfg.balance, this.strategyOpts);
    this.strategy.update(this.backends.candidates);
    this.backends.on('change', (c) => this.strategy.update(c));
    if (this.role !== 'serve') {
      this.backends.on('down', (b, reason) =>
        this.log.warn({ backend: b.address, reason }, 'backend down'),
      );
      this.backends.on('up', (b) => this.log.info({ backend: b.address }, 'backend up'));
    }
    const changed = opts.onBackendsChanged;
    if (changed) this.backends.on('state', () => changed(this));
    this.warmPool = this.createPool(cfg);
    this.health = this.createHealth(cfg);
    this.discovered = new DiscoveryDriver({
      get: (address) => this.backends.get(address),
      add: (c, joining) => this.addBackend(c, joining),
      reconfigure: (c) => {
        this.backends.reconfigure(c);
        // A new max_connections or max_rate emits no state of its own; workers need it too.
        changed?.(this);
      },
      drain: (address) => this.drainBackend(address),
      undrain: (address) => this.backends.setDraining(address, false),
      remove: (address) => this.removeBackend(address),
      statics: () => this.cfg.backends,
    });
    this.discovery = this.createDiscovery(cfg);
    this.admission = new Admission(cfg, this.clock);
    this.dialer = new Dialer(this);
    const { queueSize, queueTimeoutMs } = cfg;
    this.queue = new WaitQueue(
      cfg.name,
      this.dialer,
      this.clock,
      this.stats.counters,
      queueSize,
      queueTimeoutMs,
    );
    const svc = this;
    this.sessions = new OpenSessions({
      get cfg() {
        return svc.cfg;
      },
      backends: this.backends,
      clock: this.clock,
      stats: this.stats,
      admission: this.admission,
      dialer: this.dialer,
      queue: this.queue,
      fds: this.fds,
    });
  }

  private createPool(cfg: ServiceConfig): WarmPool {
    const refillBaseMs = Math.max(cfg.retryDelayMs, 100);
    return new WarmPool(
      cfg.pool,
      this.backends,
      cfg.connectTimeoutMs,
      refillBaseMs,
      this.log,
      this.clock,
      this.localErrors,
    );
  }

  private createHealth(cfg: ServiceConfig): HealthChecker {
    return new HealthChecker(cfg.health, this.backends, this.log, this.clock, this.localErrors);
  }

  /** A cluster worker runs none: it applies the primary's lists (applyDiscovered). */
  private createDiscovery(cfg: ServiceConfig): DiscoveryRunner | null {
    if (!cfg.discovery || this.role === 'serve') return null;
    return createDiscovery(
      cfg.discovery,
      (list) => this.discovered.apply(list),
      this.log,
      this.clock,
    );
  }

  /**
   * Applies a reloaded config in place; it cannot fail (whatever can, binding
   * a listener, LoadBalancer.reload did before). `listener`: the one to
   * serve from now on, when the listen address changed. Backends follow the
   * file (see syncBackends), and each other part is replaced only where its
   * own settings changed. Open sessions are never cut.
   */
  applyConfig(next: ServiceConfig, listener: Listener | null = null): void {
    const prev = this.cfg;
    if (listener && listener !== this.listener) this.adopt(listener);
    this.cfg = next;
    this.admission.configure(next);
    this.queue.configure(next.queueSize, next.queueTimeoutMs);
    this.backends.setOptions(setOptionsOf(next));
    this.syncBackends(next.backends);
    if (!sameConfig(next.discovery, prev.discovery)) this.restartDiscovery(next);
    if (next.balance !== prev.balance) {
      this.strategy = createStrategy(next.balance, this.strategyOpts);
      this.strategy.update(this.backends.candidates);
    }
    if (!sameConfig(next.health, prev.health)) {
      this.health.stop();
      this.health = this.createHealth(next);
      if (this.probes) this.health.start();
    }
    const poolKeys = (c: ServiceConfig) => [c.pool, c.connectTimeoutMs, c.retryDelayMs];
    if (!sameConfig(poolKeys(next), poolKeys(prev))) {
      this.warmPool.close();
      this.warmPool = this.createPool(next);
      if (this.serves) this.warmPool.start();
    }
  }

  /**
   * Binds `listen` for this service without adopting it yet (a reload binds
   * everything first): until `adopt`, it closes whoever connects, so a reload
   * that fails later has taken no client in.
   */
  bind(listen: ServiceConfig['listen']): Promise<Listener> {
    return Listener.bindPending(listen, this.log, this.clock);
  }

  /** Serves from `l` from now on; the listener it had is closed unless it was given away. */
  adopt(l: Listener): void {
    this.listener?.stop();
    l.handTo(this.sessions);
    this.listener = l;
  }

  /** Gives this service's bound listener to another (a reload renamed it, or reused its address). */
  giveAwayListener(): Listener | null {
    const l = this.listener;
    this.listener = null;
    return l;
  }

  /** The file's backends; discovered ones are discovery's (it re-applies its last list against these). */
  private syncBackends(configs: readonly BackendConfig[]): void {
    const keep = new Set(configs.map((b) => b.address));
    for (const b of [...this.backends.all])
      if (!keep.has(b.address) && !this.discovered.owns(b.address)) this.removeBackend(b.address);
    for (const bc of configs) {
      if (this.backends.get(bc.address)) this.backends.reconfigure(bc);
      else this.addBackend(bc);
    }
    this.discovered.reconcile();
  }

  /**
   * New discovery settings: the old lookup stops, the new one starts, and
   * its first answer is diffed against what the old one found (nothing is
   * drained and re-added). No discovery any more: its backends drain.
   */
  private restartDiscovery(next: ServiceConfig): void {
    this.discovery?.stop();
    this.discovery = this.createDiscovery(next);
    if (this.discovery && this.running) this.discovery.start();
    if (!next.discovery) this.discovered.apply([]);
  }

  // The one way backends change (LoadBalancer, the admin API and reload call these).

  /**
   * A new backend: it takes traffic at once, and is probed and pooled like
   * the others. `joining`: it ramps up through its slow_start (a discovered
   * backend that arrives after the first answer).
   */
  addBackend(cfg: BackendConfig, joining = false): Backend {
    const b = this.backends.add(cfg, joining);
    this.health.watch(b);
    return b;
  }

  /** No new sessions go to it; its open sessions run to their end. */
  removeBackend(address: string): Backend {
    return this.backends.remove(address);
  }

  setWeight(address: string, weight: number): Backend {
    return this.backends.setWeight(address, weight);
  }

  /** No new sessions; open ones continue. */
  drainBackend(address: string): Backend {
    return this.backends.setDraining(address, true);
  }

  /** Maintenance: out of rotation, warm pool closed, its open sessions ended now. */
  disableBackend(address: string): Backend {
    const b = this.backends.setDisabled(address, true);
    this.endSessionsOn(b.address);
    return b;
  }

  /** Ends a drain or a disable. */
  enableBackend(address: string): Backend {
    this.backends.setDisabled(address, false);
    return this.backends.setDraining(address, false);
  }

  /**
   * A cluster worker takes the primary's discovered backends (before its
   * verdicts on them): added, drained and removed here as the primary's were.
   */
  applyDiscovered(list: readonly BackendConfig[]): void {
    this.discovered.apply(list);
  }

  /** The discovered backends in rotation, as the cluster primary sends them to workers. */
  get discoveredBackends(): BackendConfig[] {
    return this.discovered.current;
  }

  /** What discovery found and how it fares, for /api/services and /metrics; null without [discovery]. */
  get discoveryStatus(): (DiscoveryStatus & { backends: number; leaving: number }) | null {
    if (!this.discovery) return null;
    return {
      ...this.discovery.status,
      backends: this.discovered.current.length,
      leaving: this.discovered.leavingCount,
    };
  }

  /** A worker takes the primary's verdicts; a backend disabled there loses its sessions here too. */
  applyBackendState(states: readonly BackendState[]): void {
    for (const b of this.backends.applyState(states)) this.endSessionsOn(b.address);
  }

  /** Ends the open sessions on one backend now (an operator disabled it). */
  endSessionsOn(address: string): number {
    return this.sessions.endOn(address);
  }

  /** Runs one round of probes now; resolves when all verdicts are in. */
  probeNow(): Promise<void> {
    return this.probes ? this.health.checkAll() : Promise.resolve();
  }

  /** Closes idle pooled sockets past idle_ttl now (refill replaces them). */
  reapPool(): void {
    this.warmPool.reap();
  }

  /** The warm pool in force (replaced when a reload changes its settings). */
  get pool(): WarmPool {
    return this.warmPool;
  }

  get counters(): ServiceCounters {
    return this.stats.counters;
  }

  /** A connected socket to a backend, dialled as a client session would be (see LoadBalancer.connect). */
  connect(opts: { signal?: AbortSignal; key?: string } = {}): Promise<Socket> {
    this.stats.counters.embedded++;
    return new EmbeddedDial(this.backends, this.dialer, opts.key ?? '', opts.signal).result;
  }

  setAccessLog(on: boolean): void {
    this.stats.setAccessLog(on);
  }

  get activeSessions(): number {
    return this.sessions.activeSessions;
  }

  /** This process runs the health probes (not a cluster worker). */
  get probes(): boolean {
    return this.role !== 'serve';
  }

  /** This process accepts clients and keeps the warm pool (not the cluster primary). */
  get serves(): boolean {
    return this.role !== 'control';
  }

  /** Binds (unless a reload hands it a bound `listener`), then probes and pools. */
  async start(listener: Listener | null = null): Promise<void> {
    if (this.serves) this.adopt(listener ?? (await this.bind(this.cfg.listen)));
    this.running = true;
    this.discovery?.start();
    if (this.probes) this.health.start();
    if (!this.serves) return;
    this.warmPool.start();
    const a = this.address();
    this.log.info({ listen: `${a.address}:${a.port}` }, 'listening');
  }

  /** The bound address; the configured one where nothing is bound (the cluster primary). */
  address(): AddressInfo {
    const bound = this.listener?.address();
    if (bound) return bound;
    const { host, port } = this.cfg.listen;
    return { address: host, port, family: isIPv6(host) ? 'IPv6' : 'IPv4' };
  }

  /** The listener this service serves from now (null in the control role). */
  get boundListener(): Listener | null {
    return this.listener;
  }

  /**
   * Stops accepting, probing and pooling; open sessions carry on, and so
   * does the wait queue (its poll stops by itself once empty), so a queued
   * client is still served or refused at queue_timeout.
   */
  stopAccepting(): void {
    this.listener?.stop();
    this.running = false;
    this.discovery?.stop();
    this.discovered.close();
    this.admission.close();
    this.health.stop();
    this.warmPool.close();
    this.backends.close();
  }

  /** Resolves when every open session has ended. */
  drained(): Promise<void> {
    return this.sessions.drained();
  }

  destroySessions(): void {
    this.sessions.destroyAll();
  }

  // Dialer hooks: every candidate at its cap, and an attempt that leaves the queue.

  /** Every candidate is at its cap: a session waits for a slot; an embedded connect() fails (its caller decides). */
  unavailable(a: DialAttempt): void {
    if (a.canWait) this.queue.offer(a);
    else this.dialer.fail(a, new NoBackendError(this.name, 'every backend is at its limit'));
  }

  leftQueue(a: DialAttempt): void {
    this.queue.remove(a);
  }
}
