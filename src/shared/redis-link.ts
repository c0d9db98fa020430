import type { Cluster } from 'ioredis';
import type { ClusterConfig } from '../config/cluster.js';
import type { Logger } from '../logger.js';
import { connectClient, type LinkClient } from './redis-connect.js';

/**
 * This process's connection to the [cluster] Redis (one node, a Sentinel
 * master or a Redis Cluster; see connectClient), shared by every service. It
 * counts each failure (cluster_redis_errors_total) and logs at
 * most one per log_interval. Heartbeats keep this instance in a sorted set
 * scored by expiry; `instances` is how many are alive (limit ÷ N when down).
 */
export class RedisLink {
  client: LinkClient | null = null;
  /** Connected and answering: shared decisions are taken; false: every decision is local. */
  up = false;
  errors = 0;
  /** Instances alive at the last heartbeat (this one included); kept while Redis is away. */
  instances = 1;
  private lastLog = Number.NEGATIVE_INFINITY;
  private heartbeat: NodeJS.Timeout | null = null;
  private closed = false;
  /** Told each time Redis comes (back), and at each heartbeat: resend what this instance holds. */
  private readonly onUp: (() => void)[] = [];
  private readonly onBeat: (() => void)[] = [];

  constructor(
    readonly cfg: ClusterConfig,
    private readonly log: Logger,
  ) {}

  key(...parts: string[]): string {
    return this.cfg.prefix + parts.join(':');
  }

  get instancesKey(): string {
    return this.key('instances');
  }

  /** Calls `f` each time Redis comes (back); returns how to stop. */
  whenUp(f: () => void): () => void {
    this.onUp.push(f);
    return () => remove(this.onUp, f);
  }

  /** Calls `f` after each heartbeat; returns how to stop. */
  everyBeat(f: () => void): () => void {
    this.onBeat.push(f);
    return () => remove(this.onBeat, f);
  }

  /** When an instance's heartbeat (and its leases) lapse unless renewed. */
  aliveUntil(now: number): number {
    return now + 3 * this.cfg.heartbeatMs;
  }

  /** What a SCAN must go through: each master of a Redis Cluster, else the one client. */
  scanTargets(): LinkClient[] {
    const c = this.client;
    if (!c) return [];
    if (!c.isCluster) return [c];
    return (c as unknown as Cluster).nodes('master') as unknown as LinkClient[];
  }

  /** Starts connecting (in the background: a start never waits on Redis). */
  async start(): Promise<void> {
    const c = await connectClient(this.cfg);
    if (this.closed) return;
    c.on('error', (err: Error) => this.failed(err));
    // A Redis Cluster reports a node's failure apart (the client stays up on the others).
    c.on('node error', (err: Error) => this.failed(err));
    c.on('ready', () => {
      this.up = true;
      this.log.info({ redis: redacted(this.cfg.redis) }, 'cluster: redis connected');
      void this.beat();
      for (const f of this.onUp) f();
    });
    c.on('close', () => {
      if (this.up) this.failed(new Error('connection closed'));
      this.up = false;
    });
    this.client = c;
    c.connect().catch((err: Error) => this.failed(err));
    this.heartbeat = setInterval(() => void this.beat(), this.cfg.heartbeatMs);
    this.heartbeat.unref();
  }

  /** One failure: counted always, logged once per interval. */
  failed(err: unknown): void {
    this.errors++;
    const now = Date.now();
    if (now - this.lastLog < this.cfg.logIntervalMs || this.closed) return;
    this.lastLog = now;
    this.log.warn(
      { err: (err as Error)?.message ?? String(err), errors: this.errors },
      'cluster: redis unreachable or failing; deciding locally',
    );
  }

  private async beat(): Promise<void> {
    const c = this.client;
    if (!c || !this.up) return;
    const now = Date.now();
    try {
      const r = await c
        .multi()
        .zadd(this.instancesKey, now + 3 * this.cfg.heartbeatMs, this.cfg.instance)
        .zremrangebyscore(this.instancesKey, '-inf', now)
        .zcard(this.instancesKey)
        .exec();
      const n = Number(r?.[2]?.[1] ?? 1);
      this.instances = Math.max(1, n);
      for (const f of this.onBeat) f();
    } catch (err) {
      this.failed(err);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    const c = this.client;
    if (!c) return;
    if (this.up) await c.zrem(this.instancesKey, this.cfg.instance).catch(() => {});
    c.disconnect();
    this.up = false;
  }
}

function remove<T>(list: T[], x: T): void {
  const i = list.indexOf(x);
  if (i >= 0) list.splice(i, 1);
}

/** The URL without its password, for logs. */
export function redacted(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable url)';
  }
}
