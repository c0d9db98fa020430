import { type AddressInfo, BlockList, isIPv6, type Socket } from 'node:net';
import type { BackendSetOptions, Follower } from './backend/backend-set.js';
import { BackendSet } from './backend/backend-set.js';
import { createStrategy, type StrategyOptions } from './balancer/index.js';
import type { Strategy } from './balancer/strategy.js';
import type { ServiceConfig } from './config/schema.js';
import { LbError } from './errors.js';
import { HealthChecker } from './health/checker.js';
import { CONNECT_BUCKETS, Histogram } from './histogram.js';
import type { Logger } from './logger.js';
import { WarmPool } from './pool/warm-pool.js';
import { Dialer, type DialerDeps, type DialTarget } from './proxy/dialer.js';
import { EmbeddedDial } from './proxy/embedded-dial.js';
import { Listener, type ListenerHost } from './proxy/listener.js';
import { Session, type SessionHost } from './proxy/session.js';
import { SourceLimiter } from './proxy/source-limits.js';

function noop(): void {}

/** Plain counters, read by metrics at scrape time. */
export interface ServiceCounters {
  accepted: number;
  /** Turned away at the service's max_connections. */
  refusedLimit: number;
  /** Every backend at its cap and the wait queue full. */
  refusedQueueFull: number;
  /** Waited queue_timeout for a backend slot without getting one. */
  refusedQueueTimeout: number;
  /** Sessions that had to wait for a backend slot. */
  queued: number;
  /** Backend sockets handed out by LoadBalancer.connect(). */
  embedded: number;
  refusedNoBackend: number;
  /** An untrusted PROXY sender, or a header missing, malformed or late. */
  refusedProxy: number;
  refusedSourceConnections: number;
  refusedSourceRate: number;
  connectFailed: number;
  retries: number;
  bytesFromClients: number;
  bytesToClients: number;
}

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
  /** "serve" role: where dial outcomes go (the primary). */
  follower?: (service: string) => Follower;
  /** Called whenever the backend set changes (the primary broadcasts state). */
  onBackendsChanged?: (svc: Service) => void;
}

/** Session lengths: 1 ms to 1 h. */
const SESSION_BUCKETS = Object.freeze([0.001, 0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600]);

/**
 * One [services.NAME]: its listener, backends, strategy, dialer, health
 * checker and warm pool, and its open sessions. `applyConfig` changes all of
 * that in place on a reload without touching open sessions.
 */
export class Service implements ListenerHost, SessionHost, DialerDeps {
  readonly name: string;
  cfg: ServiceConfig;
  readonly set: BackendSet;
  strategy: Strategy;
  pool: WarmPool;
  health: HealthChecker;
  readonly counters: ServiceCounters = {
    accepted: 0,
    refusedLimit: 0,
    refusedQueueFull: 0,
    refusedQueueTimeout: 0,
    queued: 0,
    embedded: 0,
    refusedNoBackend: 0,
    refusedProxy: 0,
    refusedSourceConnections: 0,
    refusedSourceRate: 0,
    connectFailed: 0,
    retries: 0,
    bytesFromClients: 0,
    bytesToClients: 0,
  };
  /** Accept to backend-ready, split by whether the backend leg came warm from the pool. */
  readonly connectLatency = {
    hit: new Histogram(CONNECT_BUCKETS),
    miss: new Histogram(CONNECT_BUCKETS),
  };
  /** Accept to close, for sessions that reached a backend. */
  readonly sessionDuration = new Histogram(SESSION_BUCKETS);
  readonly log: Logger;
  readonly role: ServiceRole;
  private accessLog: Logger | null;
  private readonly rootLog: Logger;
  private readonly sessions = new Set<Session>();
  private listener: Listener;
  private readonly dialer: Dialer;
  private drainWaiters: (() => void)[] = [];
  /** Sessions waiting for a backend slot, oldest first. */
  private waiting: Session[] = [];
  private queueTimer: NodeJS.Timeout | null = null;
  private readonly strategyOpts: StrategyOptions;
  private trustedList = new BlockList();
  private trustedFor: readonly string[] = [];
  private limiter = new SourceLimiter(0, 0);
  private sweepTimer: NodeJS.Timeout;

  constructor(cfg: ServiceConfig, log: Logger, opts: ServiceOptions = {}) {
    this.name = cfg.name;
    this.cfg = cfg;
    this.role = opts.role ?? 'single';
    this.strategyOpts = opts.strategy ?? {};
    this.rootLog = log;
    this.log = log.child({ service: cfg.name });
    this.accessLog = opts.accessLog ? log.child({ service: cfg.name, log: 'access' }) : null;
    this.set = new BackendSet(cfg.backends, setOptions(cfg));
    this.strategy = createStrategy(cfg.balance, this.strategyOpts);
    this.strategy.update(this.set.candidates);
    this.set.on('change', (c) => this.strategy.update(c));
    if (this.role === 'serve') {
      // The primary decides and logs health; this process only follows.
      if (opts.follower) this.set.follow(opts.follower(cfg.name));
    } else {
      this.set.on('down', (b, reason) =>
        this.log.warn({ backend: b.address, reason }, 'backend down'),
      );
      this.set.on('up', (b) => this.log.info({ backend: b.address }, 'backend up'));
    }
    const changed = opts.onBackendsChanged;
    if (changed) this.set.on('change', () => changed(this));
    this.pool = this.createPool(cfg);
    this.health = new HealthChecker(cfg.health, this.set, this.log);
    this.dialer = new Dialer(this);
    this.listener = new Listener(cfg.listen, this, this.log);
    this.sweepTimer = setInterval(() => this.limiter.sweep(performance.now()), 10_000);
    this.sweepTimer.unref();
  }

  private createPool(cfg: ServiceConfig): WarmPool {
    return new WarmPool(
      cfg.pool,
      this.set,
      cfg.connectTimeoutMs,
      Math.max(cfg.retryDelayMs, 100),
      this.log,
    );
  }

  /**
   * Applies a reloaded config in place: backends are added, removed and
   * re-weighted (unchanged ones keep their health and warm pool), and the
   * strategy, probes, pool and listener are replaced only where their settings
   * changed. Open sessions are never cut.
   */
  async applyConfig(next: ServiceConfig): Promise<void> {
    const prev = this.cfg;
    if (next.listen.address !== prev.listen.address && this.role !== 'control') {
      // Bind the new address before letting the old one go, so a failure leaves the old one serving.
      const listener = new Listener(next.listen, this, this.log);
      await listener.start();
      this.listener.stop();
      this.listener = listener;
    }
    this.cfg = next;
    this.set.setOptions(setOptions(next));
    const keep = new Set(next.backends.map((b) => b.address));
    for (const b of [...this.set.all]) if (!keep.has(b.address)) this.set.remove(b.address);
    for (const bc of next.backends) {
      if (this.set.get(bc.address)) this.set.reconfigure(bc);
      else this.health.watch(this.set.add(bc));
    }
    if (next.balance !== prev.balance) {
      this.strategy = createStrategy(next.balance, this.strategyOpts);
      this.strategy.update(this.set.candidates);
    }
    if (!sameJson(next.health, prev.health)) {
      this.health.stop();
      this.health = new HealthChecker(next.health, this.set, this.log);
      if (this.probes) this.health.start();
    }
    if (!sameJson(next.pool, prev.pool) || next.connectTimeoutMs !== prev.connectTimeoutMs) {
      this.pool.close();
      this.pool = this.createPool(next);
      if (this.serves) this.pool.start();
    }
  }

  /** A connected socket to a backend, dialled as a client session would be (see LoadBalancer.connect). */
  connect(signal?: AbortSignal): Promise<Socket> {
    const d = new EmbeddedDial(this.set, signal);
    this.counters.embedded++;
    this.dialer.dial(d);
    return d.result;
  }

  /** [log] access turned on or off by a reload. */
  setAccessLog(on: boolean): void {
    if (on && !this.accessLog)
      this.accessLog = this.rootLog.child({ service: this.name, log: 'access' });
    if (!on) this.accessLog = null;
  }

  /** Ends the open sessions on one backend now (an operator disabled it). */
  endSessionsOn(address: string): number {
    let n = 0;
    for (const s of this.sessions) {
      if (s.target?.address === address || s.reserved?.address === address) {
        s.destroy('shutdown');
        n++;
      }
    }
    return n;
  }

  get activeSessions(): number {
    return this.sessions.size;
  }

  get maxConnections(): number {
    return this.cfg.maxConnections;
  }

  get idleTimeoutMs(): number {
    return this.cfg.idleTimeoutMs;
  }

  get maxLifetimeMs(): number {
    return this.cfg.maxLifetimeMs;
  }

  get acceptProxy(): boolean {
    return this.cfg.acceptProxy;
  }

  get sendProxy(): 'v1' | 'v2' | null {
    return this.cfg.sendProxy;
  }

  /** Trusted PROXY-header senders, rebuilt when the config changes. */
  private trusted(): BlockList {
    if (this.trustedFor !== this.cfg.trustedProxies) {
      this.trustedList = new BlockList();
      for (const c of this.cfg.trustedProxies) {
        const [addr, prefix] = c.split('/') as [string, string];
        this.trustedList.addSubnet(addr, Number(prefix), isIPv6(addr) ? 'ipv6' : 'ipv4');
      }
      this.trustedFor = this.cfg.trustedProxies;
    }
    return this.trustedList;
  }

  /** Per-source limits, rebuilt when the config changes (counts restart from zero). */
  private sourceLimiter(): SourceLimiter {
    const c = this.cfg;
    if (
      this.limiter.maxConnections !== c.maxConnectionsPerSource ||
      this.limiter.maxRate !== c.maxRatePerSource
    ) {
      this.limiter = new SourceLimiter(c.maxConnectionsPerSource, c.maxRatePerSource);
    }
    return this.limiter;
  }

  admit(s: Session): void {
    const limiter = this.sourceLimiter();
    if (limiter.enabled) {
      const verdict = limiter.acquire(s.ctx.clientIp, performance.now());
      if (verdict !== 'ok') {
        if (verdict === 'connections') this.counters.refusedSourceConnections++;
        else this.counters.refusedSourceRate++;
        this.log.debug({ client: s.ctx.clientIp, limit: verdict }, 'refused: per-source limit');
        s.refuse('refused-limit');
        return;
      }
      s.sourceHeld = true;
      s.sourceLimiter = limiter;
    }
    this.dial(s);
  }

  proxyHeaderFailed(s: Session, reason: string): void {
    this.counters.refusedProxy++;
    this.log.debug({ client: s.client.remoteAddress, reason }, 'refused: PROXY header');
  }

  /** This process runs the health probes (not a cluster worker). */
  get probes(): boolean {
    return this.role !== 'serve';
  }

  /** This process accepts clients and keeps the warm pool (not the cluster primary). */
  get serves(): boolean {
    return this.role !== 'control';
  }

  async start(): Promise<void> {
    if (this.serves) await this.listener.start();
    if (this.probes) this.health.start();
    if (!this.serves) return;
    this.pool.start();
    const a = this.address();
    this.log.info({ listen: `${a.address}:${a.port}` }, 'listening');
  }

  address(): AddressInfo {
    return this.listener.address();
  }

  /** Stops accepting, probing and pooling; open sessions carry on. */
  stopAccepting(): void {
    this.listener.stop();
    clearInterval(this.sweepTimer);
    if (this.queueTimer) clearInterval(this.queueTimer);
    this.queueTimer = null;
    this.health.stop();
    this.pool.close();
    this.set.close();
  }

  /** Resolves when every open session has ended. */
  drained(): Promise<void> {
    if (this.sessions.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  destroySessions(): void {
    for (const s of this.sessions) s.destroy('shutdown');
  }

  accept(client: Socket): void {
    this.counters.accepted++;
    if (this.cfg.acceptProxy) {
      const ip = client.remoteAddress ?? '';
      if (!this.trusted().check(ip, isIPv6(ip) ? 'ipv6' : 'ipv4')) {
        client.on('error', noop);
        this.counters.refusedProxy++;
        this.log.debug({ client: ip }, 'refused: not a trusted PROXY sender');
        client.destroy();
        return;
      }
    }
    const s = new Session(this, client);
    this.sessions.add(s);
    s.start();
  }

  refused(client: Socket): void {
    this.counters.refusedLimit++;
    this.log.debug({ client: client.remoteAddress }, 'refused: max_connections reached');
    this.accessLog?.info({
      client: `${client.remoteAddress}:${client.remotePort}`,
      backend: null,
      bytesIn: 0,
      bytesOut: 0,
      ms: 0,
      cause: 'refused-limit',
    });
  }

  dial(s: Session): void {
    this.dialer.dial(s);
  }

  sessionReady(s: Session, poolHit: boolean): void {
    const seconds = (s.readyAt - s.acceptedAt) / 1000;
    (poolHit ? this.connectLatency.hit : this.connectLatency.miss).observe(seconds);
  }

  pooledSocketFailed(s: Session): void {
    this.log.debug({ client: s.ctx.clientIp }, 'pooled socket failed before use; dialling fresh');
    this.dialer.redial(s);
  }

  /** One line per closed session, with a termination cause from a fixed set. */
  private writeAccessLog(s: Session, now: number): void {
    const c = s.client;
    const b = s.backend;
    (this.accessLog as Logger).info({
      client: `${s.ctx.clientIp}:${c.remotePort ?? ''}`,
      backend: s.target?.address ?? s.attempts[s.attempts.length - 1]?.backend ?? null,
      bytesIn: c.bytesRead,
      bytesOut: c.bytesWritten,
      backendBytesIn: b?.bytesRead ?? 0,
      backendBytesOut: b?.bytesWritten ?? 0,
      ms: Math.round(now - s.acceptedAt),
      connectMs: s.readyAt > 0 ? Math.round((s.readyAt - s.acceptedAt) * 1000) / 1000 : null,
      pool: s.readyAt > 0 ? (s.poolHit ? 'hit' : 'miss') : null,
      retries: Math.max(0, s.ctx.tried.length - 1),
      cause: s.cause ?? 'client-closed',
    });
  }

  dialGaveUp(s: Session, err: LbError): void {
    if (err.code === 'LB_ERR_NO_BACKEND') this.counters.refusedNoBackend++;
    else this.counters.connectFailed++;
    this.log.warn(
      { client: s.ctx.clientIp, err: err.message, attempts: s.attempts },
      'session refused: no backend reachable',
    );
  }

  /** Every candidate is at its cap: wait for a slot, FIFO, bounded by queue_size and queue_timeout. */
  unavailable(s: DialTarget): void {
    if (!(s instanceof Session)) {
      // An embedded connect() does not queue: the caller decides whether to wait.
      s.dialFailed(
        new LbError('LB_ERR_NO_BACKEND', `service ${this.name}: every backend is at its limit`),
      );
      return;
    }
    if (s.queuedAt === 0) {
      if (this.waiting.length >= this.cfg.queueSize) {
        this.counters.refusedQueueFull++;
        this.log.debug(
          { client: s.ctx.clientIp },
          'refused: every backend at its limit and the queue is full',
        );
        s.refuse('refused-limit');
        return;
      }
      s.queuedAt = performance.now();
      this.counters.queued++;
      this.waiting.push(s);
    } else {
      // It was at the head and still found no slot: it keeps its place.
      this.waiting.unshift(s);
    }
    // Slots free when sessions end; the timer covers max_rate refills and queue_timeout.
    if (!this.queueTimer) {
      this.queueTimer = setInterval(() => this.serveQueue(), 25);
      this.queueTimer.unref();
    }
  }

  /** Hands freed slots to waiting sessions in arrival order; refuses those past queue_timeout. */
  private serveQueue(): void {
    const now = performance.now();
    while (this.waiting.length > 0) {
      const s = this.waiting[0] as Session;
      if (s.closed) {
        this.waiting.shift();
        continue;
      }
      if (now - s.queuedAt > this.cfg.queueTimeoutMs) {
        this.waiting.shift();
        this.counters.refusedQueueTimeout++;
        s.refuse('refused-limit');
        continue;
      }
      const before = this.waiting.length;
      this.waiting.shift();
      this.dialer.dial(s);
      // Re-queued at the head: nothing is free yet; the rest wait behind it.
      if (this.waiting.length === before) break;
    }
    if (this.waiting.length === 0 && this.queueTimer) {
      clearInterval(this.queueTimer);
      this.queueTimer = null;
    }
  }

  sessionEnded(s: Session): void {
    this.sessions.delete(s);
    if (s.sourceHeld) s.sourceLimiter?.release(s.ctx.clientIp);
    const now = performance.now();
    if (s.readyAt > 0) this.sessionDuration.observe((now - s.acceptedAt) / 1000);
    if (this.accessLog) this.writeAccessLog(s, now);
    if (this.waiting.length > 0) this.serveQueue();
    this.counters.bytesFromClients += s.client.bytesRead;
    this.counters.bytesToClients += s.client.bytesWritten;
    if (this.sessions.size === 0 && this.drainWaiters.length > 0) {
      const w = this.drainWaiters;
      this.drainWaiters = [];
      for (const f of w) f();
    }
  }
}

function setOptions(cfg: ServiceConfig): BackendSetOptions {
  return {
    allDown: cfg.allDown,
    fall: cfg.health.fall,
    rise: cfg.health.rise,
    passiveOnly: cfg.health.kind === 'none',
    trialBackoffMs: cfg.health.intervalMs,
  };
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
