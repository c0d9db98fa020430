import type { Cluster, Redis, RedisOptions } from 'ioredis';
import type { ClusterConfig } from '../config/cluster.js';
import { LEASE_SCRIPT, STICK_SCRIPT, TOKENS_SCRIPT } from './redis-scripts.js';

/** The link's client, one Redis or a Redis Cluster, with the scripts defined. */
export interface LinkClient extends Redis {
  lease(hash: string, ...args: (string | number)[]): Promise<number>;
  tokens(key: string, ...args: (string | number)[]): Promise<number>;
}

/**
 * Per-connection options: never queue a command while Redis is away
 * (enableOfflineQueue false: a command then fails at once), bound every
 * command (commandTimeout), reconnect in the background.
 */
function nodeOptions(cfg: ClusterConfig): RedisOptions {
  return {
    lazyConnect: true,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 1_000,
    commandTimeout: 1_000,
    retryStrategy: (times) => Math.min(100 * times, 2_000),
    connectionName: `blitz-lb ${cfg.instance}`,
  };
}

/**
 * The user, password and TLS of `redis`, for the nodes of a Redis Cluster
 * (whose hosts come from redis_cluster and the cluster itself).
 */
function credentials(url: string): RedisOptions {
  const u = new URL(url);
  const o: RedisOptions = {};
  if (u.username !== '') o.username = decodeURIComponent(u.username);
  if (u.password !== '') o.password = decodeURIComponent(u.password);
  if (u.protocol === 'rediss:') o.tls = {};
  return o;
}

/**
 * A client for [cluster]: ioredis, imported here only (so only when
 * [cluster] redis is set). A Redis Cluster (redis_cluster) gets ioredis's
 * Cluster client, which follows MOVED and ASK, refreshes its slot map, and
 * sends the commands of one tick to each node as one pipeline
 * (enableAutoPipelining), so that write-behind batches split by node.
 * Sentinel: ioredis asks the sentinels for the master, and again after a failover.
 */
export async function connectClient(cfg: ClusterConfig): Promise<LinkClient> {
  const { Redis, Cluster } = await import('ioredis');
  let c: Redis | Cluster;
  if (cfg.clusterNodes.length > 0) {
    c = new Cluster(
      cfg.clusterNodes.map((n) => ({ host: n.host, port: n.port })),
      {
        lazyConnect: true,
        enableOfflineQueue: false,
        enableAutoPipelining: true,
        // Redirections and CLUSTERDOWN retried a little (a failover takes seconds): a command
        // fails in well under a second instead, and the next flush or heartbeat tries again.
        maxRedirections: 4,
        retryDelayOnClusterDown: 100,
        retryDelayOnFailover: 100,
        retryDelayOnTryAgain: 100,
        slotsRefreshTimeout: 1_000,
        clusterRetryStrategy: (times) => Math.min(100 * times, 2_000),
        redisOptions: { ...nodeOptions(cfg), ...credentials(cfg.redis) },
      },
    );
  } else {
    c = new Redis(cfg.redis, {
      ...nodeOptions(cfg),
      ...(cfg.sentinelMaster !== null
        ? { sentinels: [...cfg.sentinels], name: cfg.sentinelMaster }
        : {}),
    });
  }
  c.defineCommand('lease', { numberOfKeys: 1, lua: LEASE_SCRIPT });
  c.defineCommand('tokens', { numberOfKeys: 1, lua: TOKENS_SCRIPT });
  c.defineCommand('stickset', { numberOfKeys: 1, lua: STICK_SCRIPT });
  return c as unknown as LinkClient;
}
