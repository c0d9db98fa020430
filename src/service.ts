import type { AddressInfo, Socket } from 'node:net';
import { BackendSet } from './backend/backend-set.js';
import { createStrategy } from './balancer/index.js';
import type { Strategy } from './balancer/strategy.js';
import type { ServiceConfig } from './config/schema.js';
import type { LbError } from './errors.js';
import { HealthChecker } from './health/checker.js';
import { CONNECT_BUCKETS, Histogram } from './histogram.js';
import type { Logger } from './logger.js';
import { WarmPool } from './pool/warm-pool.js';
import { Dialer } from './proxy/dialer.js';
import { Listener, type ListenerHost } from './proxy/listener.js';
import { Session, type SessionHost } from './proxy/session.js';

/** Plain counters, read by metrics at scrape time. */
export interface ServiceCounters {
  accepted: number;
  refusedLimit: number;
  refusedNoBackend: number;
  connectFailed: number;
  retries: number;
  bytesFromClients: number;
  bytesToClients: number;
}

/** One [services.NAME]: its listener, backends, strategy and dialer, and its open sessions. */
export class Service implements ListenerHost, SessionHost {
  readonly name: string;
  readonly set: BackendSet;
  readonly strategy: Strategy;
  readonly counters: ServiceCounters = {
    accepted: 0,
    refusedLimit: 0,
    refusedNoBackend: 0,
    connectFailed: 0,
    retries: 0,
    bytesFromClients: 0,
    bytesToClients: 0,
  };
  readonly pool: WarmPool;
  readonly health: HealthChecker;
  /** Accept to backend-ready, split by whether the backend leg came warm from the pool. */
  readonly connectLatency = {
    hit: new Histogram(CONNECT_BUCKETS),
    miss: new Histogram(CONNECT_BUCKETS),
  };
  private readonly sessions = new Set<Session>();
  private readonly listener: Listener;
  private readonly dialer: Dialer;
  private readonly log: Logger;
  private drainWaiters: (() => void)[] = [];

  constructor(
    readonly cfg: ServiceConfig,
    log: Logger,
  ) {
    this.name = cfg.name;
    this.log = log.child({ service: cfg.name });
    this.set = new BackendSet(cfg.backends, {
      allDown: cfg.allDown,
      fall: cfg.health.fall,
      rise: cfg.health.rise,
      passiveOnly: cfg.health.kind === 'none',
      trialBackoffMs: cfg.health.intervalMs,
    });
    this.strategy = createStrategy(cfg.balance);
    this.strategy.update(this.set.candidates);
    this.set.on('change', (c) => this.strategy.update(c));
    this.set.on('down', (b, reason) =>
      this.log.warn({ backend: b.address, reason }, 'backend down'),
    );
    this.set.on('up', (b) => this.log.info({ backend: b.address }, 'backend up'));
    this.pool = new WarmPool(
      cfg.pool,
      this.set,
      cfg.connectTimeoutMs,
      Math.max(cfg.retryDelayMs, 100),
      this.log,
    );
    this.health = new HealthChecker(cfg.health, this.set, this.log);
    this.dialer = new Dialer({
      pool: this.pool,
      cfg,
      set: this.set,
      strategy: this.strategy,
      log: this.log,
      counters: this.counters,
    });
    this.listener = new Listener(cfg.listen, this, this.log);
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

  async start(): Promise<void> {
    await this.listener.start();
    this.health.start();
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
    const s = new Session(this, client);
    this.sessions.add(s);
    s.start();
  }

  refused(client: Socket): void {
    this.counters.refusedLimit++;
    this.log.debug({ client: client.remoteAddress }, 'refused: max_connections reached');
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

  dialGaveUp(s: Session, err: LbError): void {
    if (err.code === 'LB_ERR_NO_BACKEND') this.counters.refusedNoBackend++;
    else this.counters.connectFailed++;
    this.log.warn(
      { client: s.ctx.clientIp, err: err.message, attempts: s.attempts },
      'session refused: no backend reachable',
    );
  }

  sessionEnded(s: Session): void {
    this.sessions.delete(s);
    this.counters.bytesFromClients += s.client.bytesRead;
    this.counters.bytesToClients += s.client.bytesWritten;
    if (this.sessions.size === 0 && this.drainWaiters.length > 0) {
      const w = this.drainWaiters;
      this.drainWaiters = [];
      for (const f of w) f();
    }
  }
}
