import type { DiscoveryConfig } from './discovery.js';
import { durationText } from './duration.js';
import type { Table } from './fields.js';
import type { HealthConfig } from './health.js';
import { logOutputTable } from './log-output.js';
import type { RouteConfig } from './route.js';
import type { BackendConfig, Config, ServiceConfig } from './schema.js';

/**
 * A validated Config back in the file's shape (snake_case keys, durations as
 * strings), every default filled in: what `check --print` shows. Fed back to
 * parseConfig it gives the same Config, so it is also a canonical form of a file.
 */

/** What `check --print` shows for a secret: still a valid token, so the output parses. */
export const REDACTED = '<redacted>';
/** The read token's stand-in: unlike the token's, so the printed file still parses (the two must differ). */
const READ_REDACTED = '<redacted-read-token>';

/** 0 as the number ("off" reads better as 0 than "0ms"), else with a unit. */
const d = (ms: number): string | number => (ms === 0 ? 0 : durationText(ms));

function backend(b: BackendConfig): Table {
  return {
    address: b.address,
    ...(b.name === undefined ? {} : { name: b.name }),
    weight: b.weight,
    backup: b.backup,
    max_connections: b.maxConnections,
    max_rate: b.maxRate,
    slow_start: d(b.slowStartMs),
  };
}

function health(h: HealthConfig): Table {
  const t: Table = {
    kind: h.kind,
    interval: d(h.intervalMs),
    timeout: d(h.timeoutMs),
    fall: h.fall,
    rise: h.rise,
    path: h.path,
  };
  if (h.port !== null) t.port = h.port;
  if (h.address !== null) t.address = h.address;
  if (h.steps.length > 0)
    t.steps = h.steps.map((s) => {
      const step: Table = {};
      if (s.sendHex !== null) step.send_hex = s.sendHex;
      if (s.expect) {
        const key = { string: 'expect', regex: 'expect_regex', hex: 'expect_hex' }[s.expect.kind];
        step[key] = s.expect.value;
      }
      return step;
    });
  if (h.role !== null) t.role = h.role;
  if (h.agent) {
    t.agent_port = h.agent.port;
    if (h.agent.host !== null) t.agent_address = h.agent.host;
    t.agent_interval = d(h.agent.intervalMs);
  }
  t.on_down = h.onDown;
  t.on_up_primary = h.onUpPrimary;
  t.tls = h.tls;
  if (h.login) {
    t.user = h.login.user;
    if (h.login.password !== null) t.password = REDACTED;
    if (h.login.database !== null) t.database = h.login.database;
  }
  return t;
}

function discovery(x: DiscoveryConfig): Table {
  const t: Table = { kind: x.kind };
  if (x.kind === 'dns' || x.kind === 'srv') {
    t.name = x.name;
    if (x.kind === 'dns') {
      t.port = x.port;
      t.family = x.family;
    }
    if (x.resolver !== null) t.resolver = x.resolver;
    t.min_ttl = d(x.minTtlMs);
    t.max_ttl = d(x.maxTtlMs);
  } else if (x.kind === 'file') t.path = x.path;
  else if (x.kubernetes) {
    const k = x.kubernetes;
    if (k.namespace !== null) t.namespace = k.namespace;
    t.service = k.service;
    if (k.port !== null) t.port = k.port;
    if (k.kubeconfig !== null) t.kubeconfig = k.kubeconfig;
    if (k.context !== null) t.context = k.context;
  } else {
    t.url = x.url;
    t.shape = x.shape;
    if (x.shape === 'consul') t.wait = d(x.waitMs);
  }
  t.interval = d(x.intervalMs);
  t.timeout = d(x.timeoutMs);
  t.allow_empty = x.allowEmpty;
  const b = x.backend;
  t.backend = {
    weight: b.weight,
    backup: b.backup,
    max_connections: b.maxConnections,
    max_rate: b.maxRate,
    slow_start: d(b.slowStartMs),
  };
  return t;
}

function service(s: ServiceConfig): Table {
  const t: Table = {
    listen:
      s.alsoListen.length === 0
        ? s.listen.address
        : [s.listen, ...s.alsoListen].map((l) => l.address),
    balance: s.balance,
    backends: s.backends.map(backend),
    connect_timeout: d(s.connectTimeoutMs),
    idle_timeout: d(s.idleTimeoutMs),
    client_timeout: d(s.clientTimeoutMs),
    server_timeout: d(s.serverTimeoutMs),
    tunnel_timeout: d(s.tunnelTimeoutMs),
    upload_rate: s.uploadRate,
    download_rate: s.downloadRate,
    upload_rate_per_source: s.uploadRatePerSource,
    download_rate_per_source: s.downloadRatePerSource,
    max_retries: s.maxRetries,
    retry_delay: d(s.retryDelayMs),
    max_connections: s.maxConnections,
    all_down: s.allDown,
    queue_size: s.queueSize,
    queue_timeout: d(s.queueTimeoutMs),
    max_lifetime: d(s.maxLifetimeMs),
  };
  if (s.sendProxy !== null) t.send_proxy = s.sendProxy;
  Object.assign(t, {
    accept_proxy: s.acceptProxy,
    trusted_proxies: [...s.trustedProxies],
    max_connections_per_source: s.maxConnectionsPerSource,
    max_rate_per_source: s.maxRatePerSource,
    allow: [...s.allow],
    deny: [...s.deny],
    apply_to_open: s.applyToOpen,
  });
  if (s.sni) t.sni = [...s.sni];
  if (s.alpn) t.alpn = [...s.alpn];
  t.hello_timeout = d(s.helloTimeoutMs);
  t.request_timeout = d(s.requestTimeoutMs);
  t.passive_http_5xx = s.passiveHttp5xx;
  t.health = health(s.health);
  t.pool = { min_idle: s.pool.minIdle, max_idle: s.pool.maxIdle, idle_ttl: d(s.pool.idleTtlMs) };
  if (s.backendTls) {
    const b = s.backendTls;
    const bt: Table = {};
    if (b.ca) bt.ca = b.ca.file;
    if (b.servername !== null) bt.servername = b.servername;
    if (b.cert) bt.cert = b.cert.file;
    if (b.key) bt.key = b.key.file;
    bt.alpn = [...b.alpn];
    bt.min_version = b.minVersion;
    bt.verify = b.verify;
    t.backend_tls = bt;
  }
  if (s.tls) {
    const x = s.tls;
    const tls: Table = { certificates: x.certificates.map((c) => ({ cert: c.cert, key: c.key })) };
    if (x.alpn) tls.alpn = [...x.alpn];
    tls.min_version = x.minVersion;
    if (x.clientCa !== null) tls.client_ca = x.clientCa;
    tls.verify_client = x.verifyClient;
    if (x.groups) tls.groups = [...x.groups];
    t.tls = tls;
  }
  if (s.discovery) t.discovery = discovery(s.discovery);

  if (s.stick) t.stick = { on: s.stick.on, expire: d(s.stick.expireMs), size: s.stick.size };
  t.hash_balance_factor = s.hashBalanceFactor;
  t.share_limits = s.shareLimits;
  if (s.balance === 'least-latency') t.latency_decay = d(s.latencyDecayMs);
  if (s.mirror) {
    const m = s.mirror;
    t.mirror = { backend: m.address, percent: m.percent, buffer: m.bufferBytes };
  }
  if (s.routes.length > 0) t.route = s.routes.map(route);
  return t;
}

function route(r: RouteConfig, i: number): Table {
  const t: Table = r.name === `route[${i}]` ? {} : { name: r.name };
  if (r.source) t.source = [...r.source];
  if (r.port) t.port = [...r.port];
  if (r.sni) t.sni = [...r.sni];
  if (r.alpn) t.alpn = [...r.alpn];
  t.backends = [...r.backends];
  return t;
}

/** A Redis URL with its password shown as REDACTED (still a URL that parses). */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = REDACTED;
    return u.toString();
  } catch {
    return url;
  }
}

/** The effective config in the file's shape; the admin token shows as REDACTED. */
export function effectiveConfig(c: Config): Table {
  const out: Table = {
    process: {
      shutdown_timeout: d(c.process.shutdownTimeoutMs),
      workers: c.process.workers,
      ...(c.process.pidFile !== null ? { pid_file: c.process.pidFile } : {}),
      drain_delay: d(c.process.drainDelayMs),
      upgrade_timeout: d(c.process.upgradeTimeoutMs),
    },
    log: { level: c.log.level, access: c.log.access, ...logOutputTable(c.log, d) },
  };
  if (c.admin) {
    const a: Table = { listen: c.admin.listen.address };
    if ('unix' in c.admin.listen) a.mode = c.admin.listen.mode.toString(8).padStart(4, '0');
    if (c.admin.token !== null) a.token = REDACTED;
    if (c.admin.readToken !== null) a.read_token = READ_REDACTED;
    a.allowed_hosts = [...c.admin.allowedHosts];
    out.admin = a;
  }
  out.services = Object.fromEntries(c.services.map((s) => [s.name, service(s)]));
  if (c.cluster) {
    const k = c.cluster;
    out.cluster = {
      redis: redactUrl(k.redis),
      prefix: k.prefix,
      instance: k.instance,
      wait: d(k.waitMs),
      flush_interval: d(k.flushMs),
      heartbeat: d(k.heartbeatMs),
      share_limits: k.shareLimits,
      lease_batch: k.leaseBatch,
      log_interval: d(k.logIntervalMs),
      ...(k.sentinelMaster !== null
        ? {
            sentinels: k.sentinels.map(hostPortText),
            sentinel_master: k.sentinelMaster,
          }
        : {}),
      ...(k.clusterNodes.length > 0 ? { redis_cluster: k.clusterNodes.map(hostPortText) } : {}),
    };
  }
  return out;
}

function hostPortText(x: { readonly host: string; readonly port: number }): string {
  return x.host.includes(':') ? `[${x.host}]:${x.port}` : `${x.host}:${x.port}`;
}
