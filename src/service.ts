import { type AddressInfo, isIPv6, type Socket } from 'node:net';
import type { Backend } from './backend/backend.js';
import { refuseTakenName } from './backend/backend-ref.js';
import { BackendSet, type BackendState, setOptionsOf } from './backend/backend-set.js';
import type { StrategyOptions } from './balancer/index.js';
import { RouteStrategy } from './balancer/routed.js';
import type { Strategy } from './balancer/strategy.js';
import { type Clock, monotonicClock } from './clock.js';
import { sameConfig } from './config/same.js';
import type { BackendConfig, ServiceConfig } from './config/schema.js';
import type { DiscoveryDriver } from './discovery/index.js';
import type { AgentTarget } from './health/agent.js';
import type { ServiceDispatcher } from './http/dispatcher.js';
import { type HttpRequestOptions, type HttpResponse, requestThrough } from './http/request.js';
import { HttpStats } from './http/stats.js';
import { LocalErrors } from './local-errors.js';
import type { Logger } from './logger.js';
import type { WarmPool } from './pool/warm-pool.js';
import { SessionAccounting } from './proxy/accounting.js';
import type { FdBudget } from './proxy/fd-budget.js';
import type { Listener } from './proxy/listener.js';
import { BackendOps } from './service/backend-ops.js';
import { ControlPlane } from './service/control-plane.js';
import type { ServiceCore, ServiceOptionsOf, ServiceRole } from './service/core.js';
import { DataPlane, emptyPool } from './service/data-plane.js';
import { ServiceHalves } from './service/halves.js';
import { type Reloadable, runReloadSteps } from './service/reload-steps.js';
import { ServiceShared } from './shared/cluster-gate.js';
import { balanceOf, stickOf, stickTo, strategyFor } from './shared/service-stick.js';
import type { StickyStrategy } from './shared/sticky-strategy.js';
import type { BackendTls } from './upstream/backend-tls.js';
import { Connector } from './upstream/connector.js';

export type { ServiceCounters } from './proxy/accounting.js';
export type { ServiceRole } from './service/core.js';

/** A Service's options (see service/core.ts), its change hook given the Service. */
export type ServiceOptions = ServiceOptionsOf<Service>;

/**
 * One [services.NAME]: its backends, strategy and counters, and the two
 * halves its role gives it (service/data-plane.ts, service/control-plane.ts).
 * It wires; the backend operations (service/backend-ops.ts) and the reload
 * steps (service/reload-steps.ts) decide.
 */
export class Service extends ServiceHalves implements ServiceCore, AgentTarget, Reloadable {
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
  /** How its backends are connected to (connect_timeout, backend_tls): one object, swapped by a reload. */
  connector: Connector;
  /** HTTP requests (lb.request, lb.dispatcher) per backend, apart from the session counters. */
  readonly httpStats = new HttpStats();
  /** Listener, sessions, dialer, pool, TLS termination; null in the cluster primary. */
  readonly data: DataPlane | null;
  /** Probes, agent, discovery; null in a cluster worker. */
  readonly control: ControlPlane | null;
  readonly ops: BackendOps;
  /** Applies discovered lists to the backends (here or, in a worker, the primary's). */
  readonly discovered: DiscoveryDriver;
  /** Between start() and stop(). */
  running = false;
  private readonly strategyOpts: StrategyOptions;
  private noPool: WarmPool | null = null;
  /** This service's share of [cluster] redis (stick entries, limits); null without it. */
  readonly shared: ServiceShared | null;

  constructor(cfg: ServiceConfig, log: Logger, opts: ServiceOptions = {}) {
    super();
    this.name = cfg.name;
    this.cfg = cfg;
    this.role = opts.role ?? 'single';
    this.clock = opts.clock ?? monotonicClock;
    this.strategyOpts = opts.strategy ?? {};
    this.log = log.child({ service: cfg.name });
    this.localErrors = new LocalErrors(this.log, this.clock);
    this.fds = opts.fds ?? null;
    this.stats = new SessionAccounting(
      this.log,
      opts.accessLog ?? false,
      this.clock,
      opts.workerSlot ? `${opts.workerSlot}.` : '',
    );
    this.stats.setAccessLog(opts.accessLog ?? false, opts.accessIntervalMs ?? 0);
    // A worker follows the primary, which decides and logs health.
    const follower = this.role === 'serve' ? (opts.follower?.(cfg.name) ?? null) : null;
    this.backends = new BackendSet(cfg.backends, setOptionsOf(cfg), {
      clock: this.clock,
      follower,
    });
    // The stick table (if any) wraps the balance strategy; routes give each group its own.
    this.strategy = this.strategyOf(cfg, null);
    this.strategy.update(this.backends.candidates);
    this.backends.on('change', (c) => this.strategy.update(c));
    const changed = opts.onBackendsChanged;
    if (changed) this.backends.on('state', () => changed(this));
    this.connector = this.createConnector(cfg, null);
    // Throws CertificateError ([tls] files): first, before any part holding a timer exists.
    // With [cluster] redis, shared limits and the shared stick table (where clients are served).
    const redis = this.role === 'control' ? null : (opts.redis ?? null);
    this.shared = redis ? new ServiceShared(redis, cfg.name, this.clock) : null;
    this.shared?.attach(this.sticky);
    this.data =
      this.role === 'control' ? null : new DataPlane(this, opts.sockets ?? null, this.shared);
    this.ops = new BackendOps({
      core: this,
      reconfigured: () => changed?.(this),
      endSessionsOn: (address, cause) => this.endSessionsOn(address, cause),
      probeAll: () => this.control?.probeAll(),
    });
    this.discovered = this.ops.discovered;
    this.control = this.role === 'serve' ? null : new ControlPlane(this, this, this.discovered);
  }

  /** `keep`: the BackendTls to keep (its session tickets) when backend_tls did not change. */
  private createConnector(cfg: ServiceConfig, keep: BackendTls | null): Connector {
    if (cfg.backendTls && !keep && !cfg.backendTls.verify && this.role !== 'serve')
      this.log.warn('backend_tls.verify = false: backend certificates are not checked');
    return Connector.of(cfg.connectTimeoutMs, cfg.backendTls, keep);
  }

  /** TLS to the backends (backend_tls); null: plain TCP. */
  get backendTls(): BackendTls | null {
    return this.connector.tls;
  }

  /** A new balance (or factor) replaces the strategy under the stick table, whose entries stay. */
  replaceStrategy(next: ServiceConfig, prev: ServiceConfig): void {
    this.strategy = this.strategyOf(next, { cfg: prev, strategy: this.strategy });
    this.strategy.update(this.backends.candidates);
    this.shared?.attach(this.sticky);
  }

  /**
   * With routes, a strategy per route's group (balancer/routed.ts), behind the
   * stick table if any (which then keeps each client within its route's
   * group); else the balance under any stick table. Stick entries survive a reload.
   */
  private strategyOf(
    cfg: ServiceConfig,
    prev: { readonly cfg: ServiceConfig; readonly strategy: Strategy } | null,
  ): Strategy {
    const was = prev === null ? null : balanceOf(prev.strategy);
    if (was instanceof RouteStrategy) was.dispose();
    if (cfg.routes.length > 0) {
      const routed = new RouteStrategy(cfg, this.strategyOpts, this.backends, was);
      return stickTo(routed, cfg.stick, prev?.strategy ?? null);
    }
    return strategyFor(cfg, this.strategyOpts, prev);
  }

  /** An operator removed stick entries (null: all); a shared table forgets them in Redis too. */
  stickForgotten(key: string | null): void {
    this.shared?.forget(key);
  }

  /** The stick table's strategy, or null without [stick] (admin API, metrics). */
  get sticky(): StickyStrategy | null {
    return stickOf(this.strategy);
  }

  /** connect_timeout or backend_tls changed: a new connector (the TLS one kept if only the timeout changed). */
  replaceConnector(next: ServiceConfig, prev: ServiceConfig): void {
    const sameTls = sameConfig(next.backendTls, prev.backendTls);
    this.connector = this.createConnector(next, sameTls ? this.connector.tls : null);
  }

  /**
   * Applies a reloaded config in place (service/reload-steps.ts); it cannot
   * fail (whatever can, binding a listener, LoadBalancer.reload did before).
   * `listener`: the one to serve from now on, when the listen address
   * changed. Returns a problem to report (certificates kept), or null.
   */
  applyConfig(
    next: ServiceConfig,
    listener: Listener | null = null,
    extras: readonly Listener[] | null = null,
  ): string | null {
    const prev = this.cfg;
    // The extras first: a main listener that became one of them is not closed by adopt.
    if (extras) this.data?.adoptExtras(extras, listener);
    if (listener && listener !== this.data?.boundListener) this.data?.adopt(listener);
    this.cfg = next;
    return runReloadSteps(this, prev, next);
  }

  /** Binds `listen` for this service without adopting it yet (see DataPlane.bind). */
  bind(listen: ServiceConfig['listen']): Promise<Listener> {
    return this.plane('bind a listener').bind(listen);
  }

  // The backend operations (service/backend-ops.ts), as LoadBalancer, the admin API and the agent call them.
  addBackend = (cfg: BackendConfig, joining = false): Backend => {
    refuseTakenName(this.backends.all, cfg);
    return this.ops.add(cfg, joining);
  };
  removeBackend = (address: string): Backend => this.ops.remove(address);
  setWeight = (address: string, weight: number): Backend => this.ops.setWeight(address, weight);
  drainBackend = (address: string): Backend => this.ops.drain(address);
  disableBackend = (address: string): Backend => this.ops.disable(address);
  enableBackend = (address: string): Backend => this.ops.enable(address);
  forceHealth = (address: string, up: boolean): Backend => this.ops.forceHealth(address, up);
  pauseChecks = (address: string, paused: boolean): Backend =>
    this.ops.pauseChecks(address, paused);
  baseWeight = (b: Backend): number => this.ops.baseWeight(b);
  followMembers = (list: readonly BackendConfig[]): void => this.ops.followMembers(list);
  applyBackendState = (states: readonly BackendState[]): void => this.ops.applyState(states);
  /** A cluster worker takes the primary's discovered backends (before its verdicts on them). */
  applyDiscovered = (list: readonly BackendConfig[]): void => this.discovered.apply(list);

  /** The warm pool in force (replaced when a reload changes its settings); the primary's is an empty one. */
  get pool(): WarmPool {
    if (this.data) return this.data.pool;
    this.noPool ??= emptyPool(this);
    return this.noPool;
  }

  /** A connected socket to a backend, dialled as a client session would be (see LoadBalancer.connect). */
  connect(opts: { signal?: AbortSignal; key?: string } = {}): Promise<Socket> {
    return this.plane('dial').connect(opts);
  }

  /** The undici Dispatcher on this service's backends (see http/dispatcher.ts). */
  get dispatcher(): ServiceDispatcher {
    return this.plane('send HTTP requests').dispatcher;
  }

  /** One HTTP request to a backend, read to the end (see LoadBalancer.request). */
  request(opts: HttpRequestOptions = {}): Promise<HttpResponse> {
    return requestThrough(this.dispatcher, this.cfg, opts);
  }

  /** Binds (unless a reload hands it a bound `listener`), then probes and pools. */
  async start(
    listener: Listener | null = null,
    extras: readonly Listener[] | null = null,
  ): Promise<void> {
    await this.data?.start(listener, extras);
    this.running = true;
    this.control?.start();
    if (!this.data) return;
    const a = this.address();
    this.log.info({ listen: `${a.address}:${a.port}` }, 'listening');
  }

  /** The bound address; the configured one where nothing is bound (the cluster primary). */
  address(): AddressInfo {
    const bound = this.data?.boundListener?.address();
    if (bound) return bound;
    const { host, port } = this.cfg.listen;
    return { address: host, port, family: isIPv6(host) ? 'IPv6' : 'IPv4' };
  }

  /**
   * Stops accepting, probing and pooling; open sessions carry on, and so
   * does the wait queue (its poll stops by itself once empty), so a queued
   * client is still served or refused at queue_timeout.
   */
  stop(): void {
    this.running = false;
    this.data?.stop();
    this.control?.stop();
    this.discovered.close();
    this.shared?.close();
    this.backends.close();
  }
}
