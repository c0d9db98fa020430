import type { AddressInfo, Socket } from 'node:net';
import { BackendSet } from './backend/backend-set.js';
import { createStrategy, type StrategyOptions } from './balancer/index.js';
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
  /** Turned away at the service's max_connections. */
  refusedLimit: number;
  /** Every backend at its cap and the wait queue full. */
  refusedQueueFull: number;
  /** Waited queue_timeout for a backend slot without getting one. */
  refusedQueueTimeout: number;
  /** Sessions that had to wait for a backend slot. */
  queued: number;
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
    refusedQueueFull: 0,
    refusedQueueTimeout: 0,
    queued: 0,
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
  /** Sessions waiting for a backend slot, oldest first. */
  private waiting: Session[] = [];
  private queueTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly cfg: ServiceConfig,
    log: Logger,
    strategyOpts: StrategyOptions = {},
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
    this.strategy = createStrategy(cfg.balance, strategyOpts);
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
      unavailable: (sess) => this.enqueue(sess),
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

  /** Waits for a backend slot, FIFO, bounded by queue_size and queue_timeout. */
  private enqueue(s: Session): void {
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
