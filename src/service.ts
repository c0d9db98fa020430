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
import { ListenError, NoBackendError } from './errors.js';
import { AgentChecker, type AgentTarget } from './health/agent.js';
import { HealthChecker } from './health/checker.js';
import { type ServiceDispatcher, serviceDispatcher } from './http/dispatcher.js';
import type { HttpHost } from './http/host.js';
import { type HttpRequestOptions, type HttpResponse, requestThrough } from './http/request.js';
import { HttpStats } from './http/stats.js';
import type { SocketSource } from './lifecycle/passed-sockets.js';
import { LocalErrors } from './local-errors.js';
import type { Logger } from './logger.js';
import { WarmPool } from './pool/warm-pool.js';
import { type ServiceCounters, SessionAccounting } from './proxy/accounting.js';
import { Admission } from './proxy/admission.js';
import type { DialAttempt } from './proxy/dial-attempt.js';
import { Dialer, type DialerDeps } from './proxy/dialer.js';
import { EmbeddedDial } from './proxy/embedded-dial.js';
import type { FdBudget } from './proxy/fd-budget.js';
import type { ListenerHost } from './proxy/listener.js';
import { Listener } from './proxy/listener.js';
import type { Session } from './proxy/session.js';
import type { TerminationCause } from './proxy/session-host.js';
import { OpenSessions } from './proxy/sessions.js';
import { BackendTls } from './proxy/tls/backend-tls.js';
import { CertificateError, describeCertificate, loadTls } from './proxy/tls/certificates.js';
import type { FrontTarget } from './proxy/tls/front.js';
import type { Routed } from './proxy/tls/routed-session.js';
import { TlsTerminator } from './proxy/tls/terminator.js';
import { WaitQueue } from './proxy/wait-queue.js';
import { ServiceShared } from './shared/cluster-gate.js';
import type { RedisLink } from './shared/redis-link.js';
import { balanceOf, stickOf, stickTo } from './shared/service-stick.js';
import type { StickyStrategy } from './shared/sticky-strategy.js';

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
  /** Listening sockets given to the process (upgrade, systemd); absent: every address is bound. */
  sockets?: SocketSource;
  /** issue 26: the process's [cluster] Redis link (null: nothing shared). */
  redis?: RedisLink | null;
}

/**
 * One [services.NAME]: wires its listener, admission, sessions, dialer, wait
 * queue, backends, strategy, health checker and warm pool, and is the one way
 * to change its backends. `applyConfig` changes all of that in place on a
 * reload without touching open sessions.
 */
export class Service implements DialerDeps, AgentTarget, HttpHost {
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
  /** TLS to the backends (backend_tls), replaced when a reload changes it; null: plain TCP. */
  backendTls: BackendTls | null;
  private warmPool: WarmPool;
  private health: HealthChecker;
  /** health.agent_port's loop; null when none is configured. */
  private agent: AgentChecker | null;
  /** Bound at start (or handed over by a reload); null in the control role and once given away. */
  private listener: Listener | null = null;
  private readonly sessions: OpenSessions;
  private readonly sockets: SocketSource | null;
  private readonly dialer: Dialer;
  private readonly queue: WaitQueue;
  private readonly admission: Admission;
  private readonly strategyOpts: StrategyOptions;
  /** [tls]: this service terminates TLS (null: bytes pass through). */
  private terminator: TlsTerminator<Routed> | null = null;
  /** Applies discovered lists to the backends (here or, in a worker, the primary's). */
  private readonly discovered: DiscoveryDriver;
  /** Looks the backends up ([discovery]); null without one, and in a cluster worker. */
  private discovery: DiscoveryRunner | null = null;
  /** Between start() and stopAccepting(). */
  private running = false;
  /** HTTP requests (lb.request, lb.dispatcher) per backend, apart from the session counters. */
  readonly httpStats = new HttpStats();
  /** Made at the first lb.dispatcher() or lb.request(): a service used only at layer 4 has none. */
  private http: ServiceDispatcher | null = null;
  /** issue 26: this service's share of [cluster] redis (stick entries, limits); null without it. */
  readonly shared: ServiceShared | null;

  constructor(cfg: ServiceConfig, log: Logger, opts: ServiceOptions = {}) {
    this.name = cfg.name;
    this.cfg = cfg;
    this.role = opts.role ?? 'single';
    this.clock = opts.clock ?? monotonicClock;
    this.strategyOpts = opts.strategy ?? {};
    this.log = log.child({ service: cfg.name });
    this.localErrors = new LocalErrors(this.log, this.clock);
    this.fds = opts.fds ?? null;
    this.sockets = opts.sockets ?? null;
    this.stats = new SessionAccounting(this.log, opts.accessLog ?? false, this.clock);
    // A worker follows the primary, which decides and logs health.
    const follower = this.role === 'serve' ? (opts.follower?.(cfg.name) ?? null) : null;
    this.backends = new BackendSet(cfg.backends, setOptionsOf(cfg), {
      clock: this.clock,
      follower,
    });
    // issue 26: the stick table (if any) wraps the balance strategy.
    this.strategy = stickTo(this.createBalance(cfg), cfg.stick, null);
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
    this.backendTls = this.createBackendTls(cfg);
    // Throws CertificateError: a service cannot start (nor a reload add it) without its
    // certificates. First, before anything holding a timer (Admission's sweep) exists: a
    // constructor that throws leaves nobody to stop it. (Its callbacks reach sessions later.)
    if (cfg.tls && this.serves) this.terminator = this.createTerminator(cfg);
    // A worker hears the primary's verdicts as the same events (applyState), so this holds in every role.
    this.backends.on('down', (b) => this.onBackendDown(b));
    this.backends.on('up', (b) => this.onBackendUp(b));
    this.warmPool = this.createPool(cfg);
    this.health = this.createHealth(cfg);
    this.agent = this.createAgent(cfg);
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
    // issue 26: with [cluster] redis, shared limits and the shared stick table.
    const redis = this.serves ? (opts.redis ?? null) : null;
    this.shared = redis ? new ServiceShared(redis, cfg.name, this.clock) : null;
    this.shared?.attach(this.sticky);
    const shared = this.shared;
    this.admission = new Admission(cfg, this.clock, shared ? (a, r) => shared.limiter(a, r) : null);
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
      get tls() {
        return svc.terminator;
      },
      gate: this.shared,
    });
  }

  private createBalance(cfg: ServiceConfig): Strategy {
    return createStrategy(cfg.balance, {
      ...this.strategyOpts,
      hashBalanceFactor: cfg.hashBalanceFactor,
    });
  }

  /** issue 26: an operator removed stick entries (null: all); a shared table forgets them in Redis too. */
  stickForgotten(key: string | null): void {
    this.shared?.forget(key);
  }

  /** The stick table's strategy, or null without [stick] (issue 26: admin API, metrics). */
  get sticky(): StickyStrategy | null {
    return stickOf(this.strategy);
  }

  private createTerminator(cfg: ServiceConfig): TlsTerminator<Routed> {
    const t = new TlsTerminator<Routed>(
      cfg.tls as NonNullable<ServiceConfig['tls']>,
      cfg.helloTimeoutMs,
      (r, sock) => this.sessions.tlsReady(r, sock),
      (r, cause) => this.sessions.tlsFailed(r, cause),
      this.log,
    );
    this.warnExpiry(t);
    return t;
  }

  private warnExpiry(t: TlsTerminator<Routed>): void {
    for (const p of t.pairs) {
      const d = describeCertificate(p);
      if (d.problem) this.log.warn({ certificate: p.certFile }, d.problem);
    }
  }

  /** Handshake failures by cause (all zero without [tls]). */
  get tlsFailures(): Readonly<Record<string, number>> {
    return this.terminator?.failures ?? {};
  }

  /**
   * The fallible half of a reload for [tls]: a service that gains it must
   * have readable, matching certificates, or the reload fails. A service that
   * had it already never fails here: applyConfig keeps its old certificates
   * when the new files are bad.
   */
  checkTls(next: ServiceConfig): void {
    if (next.tls && !this.terminator && this.serves) loadTls(next.tls);
  }

  /** How its listener reaches it: straight to its sessions, or through a front (see proxy/tls/front.ts). */
  get listenerHost(): ListenerHost {
    return this.sessions;
  }

  get frontTarget(): FrontTarget {
    return this.sessions;
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
      this.backendTls,
    );
  }

  private createHealth(cfg: ServiceConfig): HealthChecker {
    return new HealthChecker(
      cfg.health,
      this.backends,
      this.log,
      this.clock,
      this.localErrors,
      Math.random,
      this.backendTls,
    );
  }

  private createBackendTls(cfg: ServiceConfig): BackendTls | null {
    if (!cfg.backendTls) return null;
    if (!cfg.backendTls.verify && this.role !== 'serve')
      this.log.warn('backend_tls.verify = false: backend certificates are not checked');
    return new BackendTls(cfg.backendTls);
  }

  private createAgent(cfg: ServiceConfig): AgentChecker | null {
    const a = cfg.health.agent;
    return a ? new AgentChecker(a, cfg.health.timeoutMs, this, this.log) : null;
  }

  /** health.on_down = "shutdown-sessions": a backend marked down loses its open sessions. */
  private onBackendDown(b: Backend): void {
    if (this.cfg.health.onDown !== 'shutdown-sessions') return;
    const n = this.endSessionsOn(b.address, 'backend-down');
    this.stats.counters.endedBackendDown += n;
    if (n > 0) this.log.info({ backend: b.address, sessions: n }, 'on_down: sessions ended');
  }

  /** health.on_up_primary = "shutdown-backup-sessions": a primary back in rotation takes the backups' clients. */
  private onBackendUp(b: Backend): void {
    if (this.cfg.health.onUpPrimary !== 'shutdown-backup-sessions') return;
    if (b.backup || b.draining || b.disabled) return;
    let n = 0;
    for (const x of this.backends.all)
      if (x.backup) n += this.endSessionsOn(x.address, 'primary-back');
    this.stats.counters.endedPrimaryBack += n;
    if (n > 0)
      this.log.info({ backend: b.address, sessions: n }, 'on_up_primary: backup sessions ended');
  }

  /**
   * The weight an agent's "75%" is a share of: the file's, or discovery's
   * (never b.weight, which the agent's last percentage set: "50%" then
   * "100%" would stay at half). An admin-added backend keeps its own.
   */
  baseWeight(b: Backend): number {
    const c =
      this.cfg.backends.find((x) => x.address === b.address) ??
      this.discovered.configured(b.address);
    return c?.weight ?? b.weight;
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
  applyConfig(next: ServiceConfig, listener: Listener | null = null): string | null {
    const prev = this.cfg;
    if (listener && listener !== this.listener) this.adopt(listener);
    this.cfg = next;
    const tlsProblem = this.applyTls(next);
    this.admission.configure(next);
    if (next.applyToOpen && !sameConfig([next.allow, next.deny], [prev.allow, prev.deny])) {
      const n = this.sessions.endRefused();
      this.stats.counters.endedDenied += n;
      if (n > 0)
        this.log.info({ sessions: n }, 'apply_to_open: sessions of clients now refused ended');
    }
    this.queue.configure(next.queueSize, next.queueTimeoutMs);
    this.backends.setOptions(setOptionsOf(next));
    this.syncBackends(next.backends);
    if (!sameConfig(next.discovery, prev.discovery)) this.restartDiscovery(next);
    // issue 26: a new balance (or factor) replaces the strategy under the stick table, whose entries stay.
    const rebalance =
      next.balance !== prev.balance || next.hashBalanceFactor !== prev.hashBalanceFactor;
    if (rebalance || !sameConfig(next.stick, prev.stick)) {
      const inner = rebalance ? this.createBalance(next) : balanceOf(this.strategy);
      this.strategy = stickTo(inner, next.stick, this.strategy);
      this.strategy.update(this.backends.candidates);
      this.shared?.attach(this.sticky);
    }
    // New TLS settings: new dials use them at once; the probes and the pool are rebuilt below.
    const tlsChanged = !sameConfig(next.backendTls, prev.backendTls);
    if (tlsChanged) {
      this.backendTls = this.createBackendTls(next);
      this.http?.dropConnections();
    }
    if (tlsChanged || !sameConfig(next.health, prev.health)) {
      this.health.stop();
      this.health = this.createHealth(next);
      if (this.probes) this.health.start();
      this.agent?.stop();
      this.agent = this.createAgent(next);
      if (this.probes) this.agent?.start();
      // No agent any more: nothing would ever lift what the old one held down.
      if (!next.health.agent) for (const b of this.backends.all) this.backends.holdDown(b, null);
    }
    const poolKeys = (c: ServiceConfig) => [c.pool, c.connectTimeoutMs, c.retryDelayMs];
    // The old pool's sockets were handshaken under the old settings: closed, never handed out.
    if (tlsChanged || !sameConfig(poolKeys(next), poolKeys(prev))) {
      this.warmPool.close();
      this.warmPool = this.createPool(next);
      if (this.serves) this.warmPool.start();
    }
    return tlsProblem;
  }

  /**
   * Re-reads the certificates on every reload (a renewed certificate keeps
   * its file name). New handshakes take them; open sessions keep theirs. Bad
   * files leave the old ones in force: the problem is logged and returned.
   */
  private applyTls(next: ServiceConfig): string | null {
    if (!next.tls || !this.serves) {
      this.terminator = null;
      return null;
    }
    let err: CertificateError | null = null;
    if (this.terminator) {
      err = this.terminator.reload(next.tls, next.helloTimeoutMs);
      if (!err) this.warnExpiry(this.terminator);
    } else {
      try {
        this.terminator = this.createTerminator(next);
      } catch (e) {
        if (!(e instanceof CertificateError)) throw e;
        err = e;
      }
    }
    if (!err) return null;
    const msg = `services.${this.name}.tls: ${err.message}; the previous certificates stay in force`;
    this.log.error({ err: err.message }, msg);
    return msg;
  }

  /**
   * Binds `listen` for this service without adopting it yet (a reload binds
   * everything first): until `adopt`, it closes whoever connects, so a reload
   * that fails later has taken no client in.
   */
  async bind(listen: ServiceConfig['listen']): Promise<Listener> {
    const on = this.sockets ? this.sockets.take(listen.address, listen) : null;
    if (on === null && listen.passed)
      throw new ListenError(`listen ${listen.address}: no socket was passed to this process`);
    return Listener.bindPending(listen, this.log, this.clock, on);
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
    this.agent?.watch(b);
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

  /**
   * A cluster worker follows the primary's membership (MembersMap): backends
   * the admin API added there are added here, and those it removed are
   * removed (their open sessions run to their end). Discovered backends are
   * discovery's (applyDiscovered), never removed here.
   */
  followMembers(list: readonly BackendConfig[]): void {
    const want = new Set(list.map((c) => c.address));
    for (const b of [...this.backends.all])
      if (!want.has(b.address) && !this.discovered.owns(b.address)) this.removeBackend(b.address);
    for (const c of list) if (!this.backends.get(c.address)) this.addBackend(c);
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

  /** An operator's word on a backend's health; probes decide again afterwards unless paused. */
  forceHealth(address: string, up: boolean): Backend {
    return this.backends.forceHealth(address, up);
  }

  /** Stops (or resumes) probing one backend; its health stays as it is meanwhile. */
  pauseChecks(address: string, paused: boolean): Backend {
    const b = this.backends.pauseChecks(address, paused);
    // Resumed: a probe now, not an interval later.
    if (!paused && this.probes) void this.health.checkAll();
    return b;
  }

  /** The open sessions, oldest first (the admin API's list, /metrics' open bytes). */
  get openSessions(): ReadonlySet<Session> {
    return this.sessions.all;
  }

  /** Ends one open session (admin API); false when no open session has that id. */
  endSession(id: number): boolean {
    return this.sessions.endOne(id);
  }

  /** Clients waiting for a backend slot now, and the longest wait so far (ms). */
  queueNow(): { length: number; longestWaitMs: number } {
    return { length: this.queue.length, longestWaitMs: this.queue.longestWaitMs(this.clock.now()) };
  }

  /** Ends the open sessions on one backend now (an operator disabled it; or on_down, on_up_primary). */
  endSessionsOn(address: string, cause: TerminationCause = 'shutdown'): number {
    return this.sessions.endOn(address, cause);
  }

  /** Runs one round of probes (and agent checks) now; resolves when all verdicts are in. */
  async probeNow(): Promise<void> {
    if (this.probes) await Promise.all([this.health.checkAll(), this.agent?.checkAll()]);
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

  /** The undici Dispatcher on this service's backends (see http/dispatcher.ts). */
  get dispatcher(): ServiceDispatcher {
    this.http ??= serviceDispatcher(this, this.name);
    return this.http;
  }

  /** One HTTP request to a backend, read to the end (see LoadBalancer.request). */
  request(opts: HttpRequestOptions = {}): Promise<HttpResponse> {
    return requestThrough(this.dispatcher, this.cfg, opts);
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
    if (this.probes) {
      this.health.start();
      this.agent?.start();
    }
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
    this.shared?.close();
    this.health.stop();
    this.agent?.stop();
    this.warmPool.close();
    this.backends.close();
    void this.http?.close();
  }

  /** Resolves when every open session (and HTTP request under way) has ended. */
  async drained(): Promise<void> {
    await Promise.all([this.sessions.drained(), this.http?.close()]);
  }

  destroySessions(): void {
    this.sessions.destroyAll();
    void this.http?.destroy();
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
