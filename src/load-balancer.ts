import type { Server } from 'node:net';
import type { StrategyOptions } from './balancer/index.js';
import { type Clock, monotonicClock } from './clock.js';
import { sameConfig } from './config/same.js';
import type { Config, ServiceConfig } from './config/schema.js';
import { LbError } from './errors.js';
import { Fronts } from './fronts.js';
import { type SocketSource, socketKey } from './lifecycle/passed-sockets.js';
import { type Logger, silentLogger } from './logger.js';
import { descriptorsNeeded, FdBudget } from './proxy/fd-budget.js';
import type { FrontCounters } from './proxy/tls/front.js';
import { type ListenerPlan, planListeners } from './reload-plan.js';
import { Service, type ServiceOptions, type ServiceRole } from './service.js';
import { ServiceCalls } from './service-calls.js';
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

export type { AddBackendOptions } from './service-calls.js';

/**
 * The library's entry point: owns one Service per [services.NAME].
 * `cli.ts` drives the balancer only through this class.
 */
export class LoadBalancer extends ServiceCalls {
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
  /** Listeners pointed at their services or at fronts that read the ClientHello. */
  private readonly fronts: Fronts;

  constructor(config: Config, opts: LoadBalancerOptions = {}) {
    super();
    this.config = config;
    this.log = opts.logger ?? silentLogger();
    this.fronts = new Fronts(this.log);
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

  private wireListeners(): void {
    this.fronts.wire(this.services.values(), this.config.log.access);
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
    return this.fronts.refusals;
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
    this.fronts.close();
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

  service(name: string): Service {
    const svc = this.services.get(name);
    if (!svc) throw new LbError('LB_ERR_UNKNOWN_SERVICE', `no service ${name}`);
    return svc;
  }

  get serviceNames(): string[] {
    return [...this.services.keys()];
  }

  /** Every service in service order, for the admin API and metrics. */
  get allServices(): Service[] {
    return [...this.services.values()];
  }
}
