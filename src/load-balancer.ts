import type { AddressInfo, Server, Socket } from 'node:net';
import type { Dispatcher } from 'undici';
import type { Backend } from './backend/backend.js';
import type { StrategyOptions } from './balancer/index.js';
import { type Clock, monotonicClock } from './clock.js';
import { parseHostPort } from './config/address.js';
import { type BackendOptions, backendFromOptions } from './config/backend-settings.js';
import { sameConfig } from './config/same.js';
import type { Config, ServiceConfig } from './config/schema.js';
import { isFronted } from './config/sni.js';
import { LbError } from './errors.js';
import type { HttpRequestOptions, HttpResponse } from './http/request.js';
import { type SocketSource, socketKey } from './lifecycle/passed-sockets.js';
import { type Logger, silentLogger } from './logger.js';
import { descriptorsNeeded, FdBudget } from './proxy/fd-budget.js';
import type { Listener } from './proxy/listener.js';
import { Front, type FrontCounters, frontCounters } from './proxy/tls/front.js';
import { type ListenerPlan, planListeners } from './reload-plan.js';
import { Service, type ServiceOptions, type ServiceRole } from './service.js';
import { RedisLink } from './shared/redis-link.js';

export interface LoadBalancerOptions {
  /** Root logger; components take children of it. Silent when omitted. */
  logger?: Logger;
  /** Randomness for random-two (uniform in [0, 1)); a test passes a seeded one. */
  rng?: () => number;
  /** Monotonic milliseconds (performance.now() by default); a test passes one it can move. */
  clock?: Clock;
  /** The descriptor reserve (a test passes one with a small limit); by default read from the process. */
  fds?: FdBudget | null;
  /**
   * A reload sets the logger's level from the file's [log] level. Off by
   * default: a library user's logger (a silent one, say) is theirs; the CLI
   * turns it on unless --log-level was given, which then wins over the file.
   */
  followConfigLogLevel?: boolean;
  /**
   * Set by the cluster code (src/cluster/): "control" in the primary, "serve"
   * in workers. Leave unset to run everything in this process.
   */
  role?: ServiceRole;
  /** "serve" role: where each service's dial outcomes go. */
  follower?: ServiceOptions['follower'];
  /** Called whenever a service's backend set changes. */
  onBackendsChanged?: ServiceOptions['onBackendsChanged'];
  /** "serve" role: this worker's number (1..N), for per-worker metrics. */
  workerSlot?: number;
  /** Listening sockets given to the process (an upgrade, systemd); absent: every address is bound. */
  sockets?: SocketSource;
}

export interface ReloadSummary {
  added: string[];
  removed: string[];
  changed: string[];
  /** Problems the reload survived: certificates that failed to load, the old ones kept. */
  warnings?: string[];
}

export type AddBackendOptions = BackendOptions;

/**
 * The library's entry point: owns one Service per [services.NAME].
 * `cli.ts` drives the balancer only through this class.
 */
export class LoadBalancer {
  /** The config in force (replaced by a successful reload). */
  config: Config;
  readonly role: ServiceRole;
  /** 1..N in a cluster worker; 0 otherwise. */
  readonly workerSlot: number;
  private readonly log: Logger;
  private readonly followConfigLogLevel: boolean;
  private readonly services = new Map<string, Service>();
  /** Services removed by a reload, kept until their open sessions end. */
  private readonly retiring = new Set<Service>();
  private readonly serviceOpts: ServiceOptions & { strategy: StrategyOptions; accessLog: boolean };
  private started = false;
  private closing: Promise<void> | null = null;
  private reloading: Promise<unknown> = Promise.resolve();
  /** [cluster] redis, in every process that serves clients; null without [cluster]. */
  readonly redis: RedisLink | null;
  /** The fronts of listen addresses that read the ClientHello (see wireListeners). */
  private fronts: Front[] = [];
  /** Their refusals by cause, per listen address, kept across reloads. */
  private readonly frontCounts = new Map<string, FrontCounters>();

  constructor(config: Config, opts: LoadBalancerOptions = {}) {
    this.config = config;
    this.log = opts.logger ?? silentLogger();
    this.followConfigLogLevel = opts.followConfigLogLevel ?? false;
    this.role = opts.role ?? 'single';
    this.workerSlot = opts.workerSlot ?? 0;
    this.redis =
      config.cluster && this.role !== 'control' ? new RedisLink(config.cluster, this.log) : null;
    this.serviceOpts = {
      redis: this.redis,
      strategy: {
        ...(opts.rng ? { rng: opts.rng } : {}),
        ...(opts.workerSlot ? { phase: opts.workerSlot - 1 } : {}),
      },
      accessLog: config.log.access,
      accessIntervalMs: config.log.accessIntervalMs,
      workerSlot: opts.workerSlot ?? 0,
      role: this.role,
      clock: opts.clock,
      fds:
        this.role === 'control'
          ? null
          : opts.fds === undefined
            ? new FdBudget(opts.clock ?? monotonicClock)
            : opts.fds,
      follower: opts.follower,
      onBackendsChanged: opts.onBackendsChanged,
      sockets: opts.sockets,
    };
    try {
      for (const cfg of config.services) this.services.set(cfg.name, this.createService(cfg));
    } catch (err) {
      // One service's bad certificate: the ones already made hold timers, with no one to close them.
      for (const svc of this.services.values()) svc.stop();
      throw err;
    }
  }

  private createService(cfg: ServiceConfig): Service {
    return new Service(cfg, this.log, this.serviceOpts);
  }

  /** Binds every listener. On a bind failure the ones already bound are closed and the error (LB_ERR_LISTEN) is thrown. */
  async start(): Promise<void> {
    if (this.started) throw new LbError('LB_ERR_STATE', 'already started');
    this.started = true;
    this.warnDescriptors(this.config);
    // loads the client and connects in the background; serving never waits on Redis.
    if (this.redis) await this.redis.start();
    try {
      // Bound by address, so services sharing one (SNI routing) share its listener.
      const plan = await planListeners([], [...this.services.values()], this.config);
      for (const svc of this.services.values()) await svc.start(plan.byName.get(svc.name) ?? null);
    } catch (err) {
      for (const svc of this.services.values()) svc.stop();
      throw err;
    }
    this.wireListeners();
  }

  /**
   * Points every listener at what takes its clients: a service's sessions
   * straight away (as ever, for a service that reads no hello), or a front
   * that reads the PROXY header and ClientHello and routes by SNI. Fronts are
   * rebuilt on each reload; a client in the middle of its hello finishes on
   * the old one.
   */
  private wireListeners(): void {
    const groups = new Map<Listener, Service[]>();
    for (const svc of this.services.values()) {
      const l = svc.boundListener;
      if (!l) continue;
      const g = groups.get(l);
      if (g) g.push(svc);
      else groups.set(l, [svc]);
    }
    const fronts: Front[] = [];
    for (const [l, svcs] of groups) {
      const one = svcs[0] as Service;
      if (svcs.length === 1 && !isFronted(one.cfg)) {
        l.handTo(one.listenerHost);
        continue;
      }
      const listen = one.cfg.listen.address;
      let counts = this.frontCounts.get(listen);
      if (!counts) {
        counts = frontCounters();
        this.frontCounts.set(listen, counts);
      }
      const f = new Front(
        listen,
        svcs.map((s) => s.frontTarget),
        counts,
        one.fds,
        this.log.child({ listen }),
        this.config.log.access ? this.log.child({ log: 'access' }) : null,
      );
      l.handTo(f);
      fronts.push(f);
    }
    this.fronts = fronts;
  }

  /**
   * Each listen address's server (one per address, shared ones once), for an
   * upgrade to hand over. `all`: every socket a listener accepts on, keyed
   * socketKey(address, n) (an upgrade's new process takes them all).
   */
  listeningServers(all = false): Map<string, Server> {
    const out = new Map<string, Server>();
    for (const svc of this.services.values()) {
      const l = svc.boundListener;
      if (!l) continue;
      const address = svc.cfg.listen.address;
      if (!all) out.set(address, l.listeningServer);
      else
        l.listeningServers.forEach((s, i) => {
          out.set(socketKey(address, i + 1), s);
        });
    }
    return out;
  }

  /** Clients refused before any service took them (bad or unmatched hellos), per shared listen address. */
  get listenerRefusals(): ReadonlyMap<string, Readonly<FrontCounters>> {
    return this.frontCounts;
  }

  /** Says so, with the numbers, when the soft descriptor limit is below what the config may hold. */
  private warnDescriptors(config: Config): void {
    const fds = this.serviceOpts.fds;
    if (!fds || fds.limit === null) return;
    const needed = descriptorsNeeded(config);
    if (needed <= fds.limit) return;
    this.log.warn(
      { limit: fds.limit, needed, reserve: fds.reserve },
      `open-file limit ${fds.limit} is below the ${needed} descriptors this config may hold (2 per session, pools, probes, admin); new clients are refused within ${fds.reserve} of the limit: raise it (ulimit -n, LimitNOFILE=) or lower max_connections`,
    );
  }

  /**
   * Applies a new, already validated config: new services start, removed ones
   * stop accepting and drain, changed ones are updated in place (see
   * Service.applyConfig). Open sessions are never cut. Reloads run one at a
   * time. On failure (a new listen address in use) the error is thrown and
   * the services not yet touched keep their old config.
   */
  reload(next: Config): Promise<ReloadSummary> {
    const run = this.reloading.then(() => this.doReload(next));
    this.reloading = run.catch(() => {});
    return run;
  }

  private async doReload(next: Config): Promise<ReloadSummary> {
    if (this.closing) throw new LbError('LB_ERR_STATE', 'shutting down');
    const summary: ReloadSummary = { added: [], removed: [], changed: [] };
    // 1. Everything that can fail, before anything changes: new services are created (not
    //    started) and every listen address gets its listener (see planListeners).
    const added: Service[] = [];
    let plan: ListenerPlan | null = null;
    try {
      // A new service's bad certificate throws here: the ones created before it are stopped below.
      for (const c of next.services)
        if (!this.services.has(c.name)) added.push(this.createService(c));
      for (const cfg of next.services) this.services.get(cfg.name)?.checkTls(cfg);
      if (this.started) plan = await planListeners([...this.services.values()], added, next);
    } catch (err) {
      for (const svc of added) svc.stop();
      throw err;
    }
    // one Redis link a process, made at start; another [cluster] takes a restart.
    if (!sameConfig(next.cluster, this.config.cluster))
      this.log.warn('[cluster] changed: it takes effect when the process restarts');
    // 2. Commit: nothing below can fail.
    if (plan) for (const from of plan.handed) from.giveAwayListener();
    const names = new Set(next.services.map((c) => c.name));
    for (const [name, svc] of this.services) {
      if (names.has(name)) continue;
      this.services.delete(name);
      svc.stop();
      this.retiring.add(svc);
      void svc.drained().then(() => this.retiring.delete(svc));
      summary.removed.push(name);
    }
    this.serviceOpts.accessLog = next.log.access;
    this.serviceOpts.accessIntervalMs = next.log.accessIntervalMs;
    for (const cfg of next.services) {
      const svc = this.services.get(cfg.name);
      if (!svc) continue;
      svc.setAccessLog(next.log.access, next.log.accessIntervalMs);
      // Always applied, changed or not: the file's word on its backends wins on every reload
      // (weights and settings), while an operator's drain or disable of a listed backend stays.
      if (!sameConfig(cfg, svc.cfg)) summary.changed.push(cfg.name);
      const problem = svc.applyConfig(cfg, plan?.byName.get(cfg.name) ?? null);
      if (problem) summary.warnings = [...(summary.warnings ?? []), problem];
    }
    for (const svc of added) {
      this.services.set(svc.name, svc);
      summary.added.push(svc.name);
    }
    // Each start adopts its listener synchronously, before any await lets a client in; the
    // listeners are then pointed at their fronts, still before any await.
    this.config = next;
    const starting = this.started
      ? added.map((s) => s.start(plan?.byName.get(s.name) ?? null))
      : [];
    if (this.started) this.wireListeners();
    await Promise.all(starting);
    if (this.followConfigLogLevel) this.log.level = next.log.level;
    if (this.started) this.warnDescriptors(next);
    this.log.info(summary, 'config reloaded');
    return summary;
  }

  /**
   * Stops accepting, lets open sessions finish for up to `timeoutMs`
   * (default `process.shutdown_timeout`), then destroys the rest.
   */
  close(timeoutMs = this.config.process.shutdownTimeoutMs): Promise<void> {
    if (this.closing) {
      // A second request with no grace (a second signal): end what is still open now.
      if (timeoutMs === 0) for (const svc of this.everyService()) svc.destroySessions();
      return this.closing;
    }
    this.closing = this.doClose(timeoutMs);
    return this.closing;
  }

  private everyService(): Service[] {
    return [...this.services.values(), ...this.retiring];
  }

  private async doClose(timeoutMs: number): Promise<void> {
    await this.reloading;
    void this.redis?.close();
    const svcs = this.everyService();
    for (const svc of svcs) svc.stop();
    for (const f of this.fronts) f.close();
    const open = svcs.reduce((n, s) => n + s.activeSessions, 0);
    if (open > 0) this.log.info({ open, timeoutMs }, 'draining open sessions');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), timeoutMs);
    });
    const drained = Promise.all(svcs.map((s) => s.drained())).then(() => false);
    const expired = await Promise.race([drained, timedOut]);
    clearTimeout(timer);
    if (expired) {
      const left = svcs.reduce((n, s) => n + s.activeSessions, 0);
      this.log.warn({ left }, 'shutdown timeout: destroying open sessions');
      for (const svc of svcs) svc.destroySessions();
      await Promise.all(svcs.map((s) => s.drained()));
    }
  }

  /** The bound address of a service's listener (useful with port 0). */
  address(service: string): AddressInfo {
    return this.service(service).address();
  }

  service(name: string): Service {
    const svc = this.services.get(name);
    if (!svc) throw new LbError('LB_ERR_UNKNOWN_SERVICE', `no service ${name}`);
    return svc;
  }

  get serviceNames(): string[] {
    return [...this.services.keys()];
  }

  /**
   * Adds a backend at run time; it takes traffic at once. Its settings are
   * checked as the config file's are (LB_ERR_INVALID_ARGUMENT names each bad one).
   */
  addBackend(service: string, address: string, opts: AddBackendOptions = {}): Backend {
    const cfg = backendFromOptions(address, opts);
    return this.service(service).addBackend(cfg);
  }

  /**
   * A connected socket to one of the service's backends, chosen by its
   * strategy: a warm pooled socket when there is one, else a fresh connect,
   * retried with backoff on another backend like a client session. Counted in
   * the same metrics. Rejects with LbError (LB_ERR_DIAL, LB_ERR_NO_BACKEND,
   * LB_ERR_UNKNOWN_SERVICE, LB_ERR_ABORTED). The socket is the caller's.
   */
  connect(service: string, opts: { signal?: AbortSignal; key?: string } = {}): Promise<Socket> {
    return this.service(service).connect(opts);
  }

  /**
   * An undici Dispatcher on the service's backends: `fetch(url, { dispatcher })`
   * and `undici.request(url, { dispatcher })` go to the backend its strategy
   * picks, over keep-alive connections kept per backend (HTTP/2 where a TLS
   * backend offers it), retried elsewhere like lb.request (see src/http/).
   * One per service, made at the first call; closed with the balancer.
   */
  dispatcher(service: string): Dispatcher {
    return this.service(service).dispatcher;
  }

  /**
   * One HTTP request to one of the service's backends, read to the end:
   * `{ statusCode, headers, body, text(), json() }`. The service's
   * request_timeout (or `timeout`) bounds all of it; a failed connect, or a
   * reset before any answer on an idempotent request, is retried on another
   * backend with the service's backoff; anything else is never sent twice.
   */
  request(service: string, opts: HttpRequestOptions = {}): Promise<HttpResponse> {
    return this.service(service).request(opts);
  }

  /** Runs one round of health probes on every service now; resolves when all verdicts are in. */
  async performHealthCheck(): Promise<void> {
    await Promise.all([...this.services.values()].map((s) => s.probeNow()));
  }

  /** Reaps idle pooled sockets older than idle_ttl now (refill replaces them). Also runs on a timer. */
  cleanupConnections(): void {
    for (const s of this.services.values()) s.reapPool();
  }

  /** Changes a backend's weight now; strategies rebuild at once. */
  setWeight(service: string, address: string, weight: number): Backend {
    return this.service(service).setWeight(canonical(address), weight);
  }

  /** Takes a backend out for maintenance: out of rotation, warm pool closed, its open sessions ended now. */
  disableBackend(service: string, address: string): Backend {
    return this.service(service).disableBackend(canonical(address));
  }

  /** Drains a backend: no new sessions go to it; its open sessions continue to their end. */
  drainBackend(service: string, address: string): Backend {
    return this.service(service).drainBackend(canonical(address));
  }

  /** Ends a drain or a disable: the backend takes new sessions again (if healthy). */
  enableBackend(service: string, address: string): Backend {
    return this.service(service).enableBackend(canonical(address));
  }

  /** Sets a backend's health now (an operator's override); probes decide again unless paused. */
  forceHealth(service: string, address: string, up: boolean): Backend {
    return this.service(service).forceHealth(canonical(address), up);
  }

  /** Pauses or resumes a backend's health probes and agent checks. */
  pauseChecks(service: string, address: string, paused: boolean): Backend {
    return this.service(service).pauseChecks(canonical(address), paused);
  }

  /** Ends one open session by the id the admin API lists it under; false when none is open with it. */
  endSession(service: string, id: number): boolean {
    return this.service(service).endSession(id);
  }

  /** Every service in service order, for the admin API and metrics. */
  get allServices(): Service[] {
    return [...this.services.values()];
  }

  /** Removes a backend: no new sessions go to it; its open sessions run to their end. */
  removeBackend(service: string, address: string): void {
    this.service(service).removeBackend(canonical(address));
  }
}

/** "localhost:80" and "[::1]:80" as the set stores them; anything unparsable is looked up as given. */
function canonical(address: string): string {
  const hp = parseHostPort(address);
  return 'error' in hp ? address : hp.address;
}
