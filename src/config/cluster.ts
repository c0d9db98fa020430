import { hostname } from 'node:os';
import { describe } from './duration.js';
import { booleanOf, durationOf, hostPort, integerOf, knownTable, type Problems } from './fields.js';
import { type Fields, keysOf, listOf } from './spec.js';

/** `[cluster]`: state shared with the other blitz-lb instances through Redis. */
export interface ClusterConfig {
  /** redis://[user:pass@]host:port[/db] or rediss:// (TLS). */
  readonly redis: string;
  /** Key prefix; one Redis can serve several independent balancer groups. */
  readonly prefix: string;
  /** This instance's name in heartbeats and leases; unique in the group. */
  readonly instance: string;
  /** How long an accept may wait for Redis on a local miss before the local decision stands. */
  readonly waitMs: number;
  /** Write-behind period: stick entries and lease returns are sent in one pipeline this often. */
  readonly flushMs: number;
  /** Heartbeat period; an instance not heard from for 3 periods is no longer counted. */
  readonly heartbeatMs: number;
  /** Every service's per-source limits are shared (a service's own share_limits wins). */
  readonly shareLimits: boolean;
  /** Slots or tokens leased from Redis at a time (0: limit / (2 x instances), at least 1). */
  readonly leaseBatch: number;
  /** How often a Redis failure is logged (errors are counted every time). */
  readonly logIntervalMs: number;
  /** Redis Sentinel: the sentinels to ask for the master (empty: connect to `redis`'s host). */
  readonly sentinels: readonly { readonly host: string; readonly port: number }[];
  /** The master's name in the sentinels (with `sentinels`). */
  readonly sentinelMaster: string | null;
  /** Redis Cluster: seed nodes (empty: not a cluster); the client finds the others from them. */
  readonly clusterNodes: readonly { readonly host: string; readonly port: number }[];
}

export const CLUSTER_FIELDS = {
  redis: {
    kind: 'string',
    pattern: '^rediss?://.+',
    doc: 'redis://[user:password@]host:port[/db], or rediss:// for TLS',
  },
  prefix: {
    kind: 'string',
    minLength: 1,
    maxLength: 200,
    doc: 'Key prefix in Redis (default "blitz-lb:")',
  },
  instance: {
    kind: 'string',
    minLength: 1,
    maxLength: 200,
    doc: 'This instance in the group (default hostname:pid)',
  },
  wait: {
    kind: 'duration',
    default: 5,
    min: 0,
    max: 1_000,
    doc: 'How long an accept waits for Redis on a local miss; then the local decision stands',
  },
  flush_interval: {
    kind: 'duration',
    default: 50,
    min: 1,
    max: 10_000,
    doc: 'Write-behind period for stick entries and lease returns',
  },
  heartbeat: {
    kind: 'duration',
    default: 2_000,
    min: 100,
    max: 60_000,
    doc: 'Instance heartbeat period (an instance silent for 3 periods is not counted)',
  },
  share_limits: {
    kind: 'boolean',
    default: false,
    doc: 'max_connections_per_source and max_rate_per_source hold across the instances',
  },
  lease_batch: {
    kind: 'integer',
    default: 0,
    min: 0,
    max: 1_000_000,
    doc: 'Slots/tokens leased from Redis at a time (0: limit / (2 x instances), at least 1)',
  },
  log_interval: {
    kind: 'duration',
    default: 30_000,
    min: 100,
    max: 3_600_000,
    doc: 'How often a Redis failure is logged (each one is counted)',
  },
  sentinels: listOf(
    { kind: 'address', doc: 'A sentinel "host:port"' },
    'Redis Sentinel: ask these for the master (redis then gives only the password, db and TLS)',
  ),
  sentinel_master: {
    kind: 'string',
    minLength: 1,
    doc: 'With sentinels: the master name they monitor',
  },
  redis_cluster: listOf(
    { kind: 'address', doc: 'A Redis Cluster node "host:port"' },
    'Redis Cluster: seed nodes, the others are found from them (redis then gives only the user, password and TLS)',
  ),
} satisfies Fields;
export const CLUSTER_KEYS = keysOf(CLUSTER_FIELDS);

/** The service key that shares (or, false, keeps local) its per-source limits whatever [cluster] says. */
export const SHARE_LIMITS_FIELD = {
  kind: 'boolean',
  doc: 'Share max_connections_per_source / max_rate_per_source through [cluster] redis (default: [cluster] share_limits)',
} as const;

export function parseCluster(v: unknown, p: Problems): ClusterConfig | null {
  const t = knownTable(v, CLUSTER_KEYS, 'cluster', p);
  if (t === null) return null;
  const f = CLUSTER_FIELDS;
  let redis = '';
  if (t.redis === undefined)
    p.add('cluster.redis', 'missing; [cluster] needs redis = "redis://host:port"');
  else if (typeof t.redis !== 'string' || !/^rediss?:\/\/./.test(t.redis))
    p.add(
      'cluster.redis',
      `expected "redis://host:port" or "rediss://host:port", got ${describe(t.redis)}`,
    );
  else {
    try {
      const u = new URL(t.redis);
      if (u.hostname === '') throw new Error('no host');
      redis = t.redis;
    } catch {
      p.add('cluster.redis', `not a valid URL: ${describe(t.redis)}`);
    }
  }
  const text = (key: 'prefix' | 'instance', dflt: string): string => {
    const x = t[key];
    if (x === undefined) return dflt;
    if (typeof x !== 'string' || x.length === 0 || x.length > 200 || !/^[\x21-\x7e]+$/.test(x)) {
      p.add(
        `cluster.${key}`,
        `expected 1-200 printable ASCII characters without spaces, got ${describe(x)}`,
      );
      return dflt;
    }
    return x;
  };
  const sentinels: { host: string; port: number }[] = [];
  if (t.sentinels !== undefined) {
    if (!Array.isArray(t.sentinels) || t.sentinels.length === 0)
      p.add('cluster.sentinels', `expected a list of "host:port", got ${describe(t.sentinels)}`);
    else
      t.sentinels.forEach((x: unknown, i) => {
        const hp = hostPort(x, `cluster.sentinels[${i}]`, p);
        if (hp) sentinels.push({ host: hp.host, port: hp.port });
      });
  }
  let sentinelMaster: string | null = null;
  if (t.sentinel_master !== undefined) {
    if (typeof t.sentinel_master !== 'string' || !/^[\x21-\x7e]+$/.test(t.sentinel_master))
      p.add(
        'cluster.sentinel_master',
        `expected a master name, got ${describe(t.sentinel_master)}`,
      );
    else sentinelMaster = t.sentinel_master;
  }
  if (t.sentinels !== undefined && t.sentinel_master === undefined)
    p.add(
      'cluster.sentinel_master',
      'sentinels need sentinel_master = "NAME" (the master they monitor)',
    );
  if (t.sentinel_master !== undefined && t.sentinels === undefined)
    p.add('cluster.sentinels', 'sentinel_master needs sentinels = ["host:port", ...]');
  const clusterNodes = parseClusterNodes(t, redis, p);
  return Object.freeze({
    clusterNodes,
    sentinels: Object.freeze(sentinels),
    sentinelMaster,
    redis,
    prefix: text('prefix', 'blitz-lb:'),
    instance: text('instance', `${hostname()}:${process.pid}`),
    waitMs: durationOf(f.wait, t.wait, 'cluster.wait', p),
    flushMs: durationOf(f.flush_interval, t.flush_interval, 'cluster.flush_interval', p),
    heartbeatMs: durationOf(f.heartbeat, t.heartbeat, 'cluster.heartbeat', p),
    shareLimits: booleanOf(f.share_limits, t.share_limits, 'cluster.share_limits', p),
    leaseBatch: integerOf(f.lease_batch, t.lease_batch, 'cluster.lease_batch', p),
    logIntervalMs: durationOf(f.log_interval, t.log_interval, 'cluster.log_interval', p),
  });
}

/** Whether a service shares its per-source limits: its own share_limits, else [cluster]'s; never without [cluster]. */
export function parseShareLimits(v: unknown, path: string, p: Problems): boolean | null {
  if (v === undefined) return null;
  if (typeof v !== 'boolean') {
    p.add(path, `expected true or false, got ${describe(v)}`);
    return null;
  }
  return v;
}

/**
 * `[cluster] redis_cluster`: a Redis Cluster's seed nodes. Not with
 * sentinels (a Cluster fails over by itself), and only database 0 (a Cluster
 * has no other).
 */
function parseClusterNodes(
  t: Record<string, unknown>,
  redis: string,
  p: Problems,
): readonly { host: string; port: number }[] {
  const v = t.redis_cluster;
  if (v === undefined) return Object.freeze([]);
  const nodes: { host: string; port: number }[] = [];
  if (!Array.isArray(v) || v.length === 0) {
    p.add('cluster.redis_cluster', `expected a list of "host:port", got ${describe(v)}`);
    return Object.freeze(nodes);
  }
  v.forEach((x: unknown, i) => {
    const hp = hostPort(x, `cluster.redis_cluster[${i}]`, p);
    if (hp) nodes.push({ host: hp.host, port: hp.port });
  });
  if (t.sentinels !== undefined || t.sentinel_master !== undefined)
    p.add(
      'cluster.redis_cluster',
      'a Redis Cluster fails over by itself: give redis_cluster or sentinels, not both',
    );
  if (redis !== '') {
    const db = new URL(redis).pathname.replace(/^\//, '');
    if (db !== '' && db !== '0')
      p.add(
        'cluster.redis',
        `a Redis Cluster has only database 0; remove "/${db}" from the URL (or redis_cluster)`,
      );
  }
  return Object.freeze(nodes);
}
