import type { Redis } from 'ioredis';
import type { ClusterConfig } from '../config/cluster.js';
import type { Logger } from '../logger.js';

/** Sums the live instances' leases in a hash and grants up to `want` more under `limit` (see SharedLimits). */
const LEASE_SCRIPT = `
local now = tonumber(ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[6], ARGV[1])
local sum = 0
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  local seen = redis.call('ZSCORE', KEYS[2], fields[i])
  if (not seen) or tonumber(seen) < now then
    redis.call('HDEL', KEYS[1], fields[i])
  else
    sum = sum + tonumber(fields[i + 1])
  end
end
local grant = math.min(tonumber(ARGV[2]), tonumber(ARGV[3]) - sum)
if grant > 0 then redis.call('HINCRBY', KEYS[1], ARGV[1], grant) else grant = 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return grant`;

/** Takes up to `want` of `limit` tokens of one second's window. */
const TOKENS_SCRIPT = `
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local grant = math.min(tonumber(ARGV[1]), tonumber(ARGV[2]) - used)
if grant > 0 then redis.call('INCRBY', KEYS[1], grant) else grant = 0 end
redis.call('PEXPIRE', KEYS[1], 2000)
return grant`;

/**
 * A stick entry: the first instance to write a key decides it for the group
 * (a later writer gets the group's answer back and adopts it), a renewal only
 * extends the TTL of the same answer, and a move (ARGV[3] = 1: the group's
 * backend was no candidate here) overwrites it. Returns the group's backend.
 */
const STICK_SCRIPT = `
local cur = redis.call('GET', KEYS[1])
if (not cur) or ARGV[3] == '1' then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
if cur == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return cur`;

export interface LinkClient extends Redis {
  lease(hash: string, instances: string, ...args: (string | number)[]): Promise<number>;
  tokens(key: string, ...args: (string | number)[]): Promise<number>;
}

/**
 * This process's connection to the [cluster] Redis, shared by
 * every service: ioredis, imported only when [cluster] redis is set. It never
 * queues a command while Redis is away (enableOfflineQueue false: a command
 * then fails at once), bounds every command (commandTimeout), reconnects in
 * the background, counts each failure (cluster_redis_errors_total) and logs at
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

  /** Starts connecting (in the background: a start never waits on Redis). */
  async start(): Promise<void> {
    const { Redis } = await import('ioredis');
    if (this.closed) return;
    const c = new Redis(this.cfg.redis, {
      lazyConnect: true,
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
      connectTimeout: 1_000,
      commandTimeout: 1_000,
      retryStrategy: (times) => Math.min(100 * times, 2_000),
      connectionName: `blitz-lb ${this.cfg.instance}`,
      // Redis Sentinel: ioredis asks the sentinels for the master, and again after a failover.
      ...(this.cfg.sentinelMaster !== null
        ? { sentinels: [...this.cfg.sentinels], name: this.cfg.sentinelMaster }
        : {}),
    }) as LinkClient;
    c.defineCommand('lease', { numberOfKeys: 2, lua: LEASE_SCRIPT });
    c.defineCommand('tokens', { numberOfKeys: 1, lua: TOKENS_SCRIPT });
    c.defineCommand('stickset', { numberOfKeys: 1, lua: STICK_SCRIPT });
    c.on('error', (err: Error) => this.failed(err));
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
