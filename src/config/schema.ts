import { isIP } from 'node:net';
import { ConfigError } from '../errors.js';
import { STRATEGY_NAMES, type StrategyName } from '../strategy-names.js';
import { type HostPort, listensOverlap, literalTwins, parseHostPort } from './address.js';
import { adminListen, isUnixListen } from './admin.js';
import { BACKEND_FIELDS, BACKEND_WHOLE_NUMBER_KEYS, parseBackend } from './backend-settings.js';
import { BACKEND_TLS_FIELDS, BACKEND_TLS_KEYS, parseBackendTls } from './backend-tls.js';
import { CLUSTER_FIELDS, parseCluster, parseShareLimits, SHARE_LIMITS_FIELD } from './cluster.js';
import { DISCOVERY_FIELDS, parseDiscovery } from './discovery.js';
import { describe } from './duration.js';
import {
  booleanOf,
  checkKeys,
  durationOf,
  integerOf,
  isTable,
  oneOf,
  oneOfSpec,
  Problems,
  type Table,
  table,
} from './fields.js';
import {
  HEALTH_DEFAULTS,
  HEALTH_DURATION_KEYS,
  HEALTH_FIELDS,
  HEALTH_KEYS,
  HEALTH_WHOLE_NUMBER_KEYS,
  parseHealth,
} from './health.js';
import { LIMITS, MAX_RETRY_DELAY_MS, MAX_TIMER_MS } from './limits.js';
import { type ListenAddress, listenAddress } from './listen.js';
import { LOG_OUTPUT_FIELDS, parseLogOutput } from './log-output.js';
import { PROCESS_DURATION_KEYS, processConfig } from './process.js';
import { checkSharedListens, sniList } from './sni.js';
import { type Fields, keysOf } from './spec.js';
import {
  HASH_BALANCE_FACTOR_FIELD,
  parseHashBalanceFactor,
  parseStick,
  STICK_FIELDS,
  STICK_KEYS,
} from './stick.js';
import { alpnList, parseTls, TLS_FIELDS } from './tls.js';

export type { ClusterConfig } from './cluster.js';
export type {
  AgentConfig,
  ExpectConfig,
  HealthConfig,
  HealthKind,
  ProbeStepConfig,
} from './health.js';
export { HEALTH_KINDS } from './health.js';
export type { StickConfig } from './stick.js';
export type { TlsCertPair, TlsConfig } from './tls.js';

export * from './types.js';

import {
  ALL_DOWN_POLICIES,
  type AllDownPolicy,
  type BackendConfig,
  type Config,
  LOG_LEVELS,
  type LogLevel,
  type ParseOptions,
  type PoolConfig,
  type ServiceConfig,
} from './types.js';

export const DEFAULTS = Object.freeze({
  shutdownTimeoutMs: 30_000,
  logLevel: 'info' as LogLevel,
  balance: 'round-robin' as StrategyName,
  connectTimeoutMs: 2_000,
  idleTimeoutMs: 600_000,
  maxRetries: 3,
  retryDelayMs: 100,
  maxConnections: 10_000,
  allDown: 'try-all' as AllDownPolicy,
  queueSize: 1000,
  queueTimeoutMs: 5_000,
  helloTimeoutMs: 5_000,
  requestTimeoutMs: 5_000,
  health: HEALTH_DEFAULTS,
  pool: { minIdle: 2, maxIdle: 10, idleTtlMs: 30_000 },
});

const MAX_WORKERS = 256;
const WORKER_COUNT = {
  kind: 'integer',
  min: 1,
  max: MAX_WORKERS,
  doc: 'Processes serving traffic',
} as const;
const CIDRS = (doc: string) =>
  ({
    kind: 'list',
    items: { kind: 'string', doc: 'An address or CIDR: "10.0.0.0/8", "127.0.0.1", "::1/128"' },
    doc,
  }) as const;

export const PROCESS_FIELDS = {
  shutdown_timeout: {
    kind: 'duration',
    default: DEFAULTS.shutdownTimeoutMs,
    min: 0,
    max: MAX_TIMER_MS,
    doc: 'On SIGTERM/SIGINT, open sessions may finish for this long; then they are cut',
  },
  workers: {
    kind: 'anyOf',
    default: 1,
    options: [WORKER_COUNT, { kind: 'enum', values: ['auto'], doc: 'One worker per core' }],
    doc: 'Processes serving traffic: 1-256 or "auto" (a primary and one worker per core)',
  },
  pid_file: {
    kind: 'string',
    doc: "Written with the PID once the process serves (and by an upgrade's new process); relative to the config file",
  },
  drain_delay: {
    kind: 'duration',
    default: 0,
    min: 0,
    max: MAX_TIMER_MS,
    doc: 'On SIGTERM/SIGINT: /readyz answers 503 this long while still accepting, before accepting stops',
  },
  upgrade_timeout: {
    kind: 'duration',
    default: 30_000,
    min: 1,
    max: MAX_TIMER_MS,
    doc: "An upgrade's new process must say it serves within this, or the old one keeps serving",
  },
} satisfies Fields;

export const LOG_FIELDS = {
  level: {
    kind: 'enum',
    values: LOG_LEVELS,
    default: DEFAULTS.logLevel,
    doc: 'trace | debug | info | warn | error | fatal | silent',
  },
  access: {
    kind: 'boolean',
    default: false,
    doc: 'One JSON line per closed session: session id, client, backend, bytes, ms, cause',
  },
  ...LOG_OUTPUT_FIELDS,
} satisfies Fields;

export const ADMIN_FIELDS = {
  listen: {
    kind: 'anyOf',
    required: true,
    options: [
      { kind: 'address', doc: '"host:port" (loopback unless you mean it)' },
      { kind: 'string', pattern: '^unix:.+$', doc: '"unix:PATH": a Unix socket, with mode' },
    ],
    doc: 'Status page, /metrics and /api/* on "host:port" (loopback unless you mean it) or "unix:PATH"',
  },
  token: {
    kind: 'string',
    pattern: '^[\\x21-\\x7e]{8,4096}$',
    doc: 'Write calls need "Authorization: Bearer TOKEN" (8-4096 printable ASCII characters)',
  },
  read_token: {
    kind: 'string',
    pattern: '^[\\x21-\\x7e]{8,4096}$',
    doc: 'With token set: GET /api/* and /metrics need "Authorization: Bearer READ_TOKEN" (or the token)',
  },
  mode: {
    kind: 'string',
    pattern: '^0?[0-7]{3}$',
    doc: 'With listen = "unix:PATH": the socket file\'s permissions, e.g. "0660" (default "0600")',
  },
  allowed_hosts: {
    kind: 'list',
    items: { kind: 'string', doc: '"name:port", "[v6]:port" or a bare "name"' },
    doc: 'Host header values served besides the listen address and loopback names',
  },
} satisfies Fields;

export const POOL_FIELDS = {
  min_idle: {
    kind: 'integer',
    default: DEFAULTS.pool.minIdle,
    min: 0,
    max: LIMITS.poolIdle,
    doc: 'Pre-opened connections kept per healthy backend (0: none)',
  },
  max_idle: {
    kind: 'integer',
    default: DEFAULTS.pool.maxIdle,
    min: 0,
    max: LIMITS.poolIdle,
    doc: 'Idle pooled connections per backend at most; at least min_idle',
  },
  idle_ttl: {
    kind: 'duration',
    default: DEFAULTS.pool.idleTtlMs,
    min: 1,
    max: MAX_TIMER_MS,
    doc: 'An idle pooled socket older than this is closed (and replaced)',
  },
} satisfies Fields;

/** [services.NAME], and [defaults] (the same keys, inherited by every service). */
export const SERVICE_FIELDS = {
  listen: {
    kind: 'anyOf',
    required: true,
    options: [
      { kind: 'address', doc: '"host:port" or "[v6]:port"' },
      {
        kind: 'string',
        pattern: '^(systemd:.+|fd:[0-9]+)$',
        doc: 'A socket passed in: "systemd:NAME" (LISTEN_FDNAMES) or "fd:N"',
      },
    ],
    doc: 'Where clients connect: "host:port", "[v6]:port", or a passed socket ("systemd:NAME", "fd:N")',
  },
  balance: {
    kind: 'enum',
    values: STRATEGY_NAMES,
    default: DEFAULTS.balance,
    doc: 'round-robin (smooth weighted) | least-connections | random-two | ip-hash (Maglev)',
  },
  backends: {
    kind: 'list',
    items: {
      kind: 'anyOf',
      options: [
        { kind: 'address', doc: 'A backend "host:port" with weight 1' },
        { kind: 'table', fields: BACKEND_FIELDS, doc: 'A backend with its settings' },
      ],
      doc: 'A backend: "host:port" or { address = "host:port", weight = 2, ... }',
    },
    doc: 'The backends (at least one, unless a [discovery] table finds them)',
  },
  connect_timeout: {
    kind: 'duration',
    default: DEFAULTS.connectTimeoutMs,
    min: 1,
    max: LIMITS.connectMs,
    doc: 'Deadline for one backend connect',
  },
  idle_timeout: {
    kind: 'duration',
    default: DEFAULTS.idleTimeoutMs,
    min: 0,
    max: MAX_TIMER_MS,
    doc: 'No bytes either way for this long: both legs are destroyed (0: off)',
  },
  max_retries: {
    kind: 'integer',
    default: DEFAULTS.maxRetries,
    min: 0,
    max: LIMITS.retries,
    doc: 'Extra dial attempts, each on a backend not yet tried when one exists',
  },
  retry_delay: {
    kind: 'duration',
    default: DEFAULTS.retryDelayMs,
    min: 0,
    max: MAX_RETRY_DELAY_MS,
    doc: 'First backoff between dial attempts; doubles each retry, up to 30s',
  },
  max_connections: {
    kind: 'integer',
    default: DEFAULTS.maxConnections,
    min: 1,
    max: LIMITS.connections,
    doc: 'Open sessions for this service; beyond, new clients are closed at once',
  },
  all_down: {
    kind: 'enum',
    values: ALL_DOWN_POLICIES,
    default: DEFAULTS.allDown,
    doc: 'No backend healthy: try-all (dial them anyway) | refuse (close the client)',
  },
  queue_size: {
    kind: 'integer',
    default: DEFAULTS.queueSize,
    min: 0,
    max: LIMITS.connections,
    doc: 'Clients that may wait when every backend is at max_connections / max_rate',
  },
  queue_timeout: {
    kind: 'duration',
    default: DEFAULTS.queueTimeoutMs,
    min: 1,
    max: MAX_TIMER_MS,
    doc: 'A waiting client is refused after this long',
  },
  max_lifetime: {
    kind: 'duration',
    default: 0,
    min: 0,
    max: MAX_TIMER_MS,
    doc: 'Sessions older than this are closed, busy or not (0: off)',
  },
  send_proxy: {
    kind: 'enum',
    values: ['v1', 'v2'] as const,
    doc: 'PROXY protocol header to backends: v1 | v2 (absent: off)',
  },
  accept_proxy: {
    kind: 'boolean',
    default: false,
    doc: 'Clients must send a PROXY header (v1 or v2); needs trusted_proxies',
  },
  trusted_proxies: CIDRS('CIDRs allowed to send a PROXY header, e.g. ["10.0.0.0/8"]'),
  max_connections_per_source: {
    kind: 'integer',
    default: 0,
    min: 0,
    max: LIMITS.connections,
    doc: 'Open sessions per client address (0: no limit)',
  },
  max_rate_per_source: {
    kind: 'integer',
    default: 0,
    min: 0,
    max: LIMITS.rate,
    doc: 'New sessions a second per client address (0: no limit)',
  },
  allow: CIDRS('CIDRs that may connect (empty: everyone not denied)'),
  deny: CIDRS('CIDRs refused; deny wins over allow'),
  apply_to_open: {
    kind: 'boolean',
    default: false,
    doc: 'A reload that changes allow/deny also ends open sessions now denied',
  },
  health: { kind: 'table', fields: HEALTH_FIELDS, doc: 'Health checks of the backends' },
  pool: { kind: 'table', fields: POOL_FIELDS, doc: 'Warm pool: pre-opened backend connections' },
  backend_tls: {
    kind: 'table',
    fields: BACKEND_TLS_FIELDS,
    doc: 'Speak TLS to the backends (absent: plain TCP)',
  },
  sni: {
    kind: 'list',
    minItems: 1,
    items: { kind: 'string', doc: 'A host name, "*.domain" or "*" (the default)' },
    doc: 'Names this service takes on a listen address it may share, read from the ClientHello',
  },
  alpn: {
    kind: 'list',
    minItems: 1,
    items: { kind: 'string', doc: 'A protocol name such as "h2"' },
    doc: 'With sni: only ClientHellos offering one of these protocols',
  },
  request_timeout: {
    kind: 'duration',
    default: DEFAULTS.requestTimeoutMs,
    min: 1,
    max: MAX_TIMER_MS,
    doc: 'lb.request(): the whole HTTP request, connect to the last body byte',
  },
  passive_http_5xx: {
    kind: 'boolean',
    default: false,
    doc: 'lb.request()/lb.dispatcher(): a 5xx answer counts as a passive health failure',
  },
  hello_timeout: {
    kind: 'duration',
    default: DEFAULTS.helloTimeoutMs,
    min: 1,
    max: LIMITS.connectMs,
    doc: 'How long a client has to send its ClientHello (and finish a terminated handshake)',
  },
  tls: {
    kind: 'table',
    fields: TLS_FIELDS,
    doc: 'Terminate TLS here (absent: bytes pass through)',
  },
  discovery: {
    kind: 'table',
    fields: DISCOVERY_FIELDS,
    doc: 'Backends found at run time besides backends: dns, srv, file or http',
  },
  stick: {
    kind: 'table',
    fields: STICK_FIELDS,
    doc: 'A stick table: each client stays on the backend it was first given (any balance)',
  },
  hash_balance_factor: HASH_BALANCE_FACTOR_FIELD,
  share_limits: SHARE_LIMITS_FIELD,
} satisfies Fields;

/** The whole file. */
export const TOP_FIELDS = {
  process: { kind: 'table', fields: PROCESS_FIELDS, doc: 'The process' },
  log: {
    kind: 'table',
    fields: LOG_FIELDS,
    doc: 'Logging: JSON lines to stdout, stderr, a file or syslog',
  },
  admin: { kind: 'table', fields: ADMIN_FIELDS, doc: 'The admin server (absent: none)' },
  defaults: {
    kind: 'table',
    fields: Object.fromEntries(
      Object.entries(SERVICE_FIELDS).map(([k, f]) => [k, { ...f, required: undefined }]),
    ) as Fields,
    doc: "Any service key, inherited by every service; a service's own key wins, sub-tables merge key by key",
  },
  services: {
    kind: 'map',
    names: '^[A-Za-z0-9_-]+$',
    values: {
      kind: 'table',
      fields: SERVICE_FIELDS,
      doc: 'One service: a listener and its backends',
    },
    required: true,
    doc: 'The services, [services.NAME] each',
  },
  cluster: {
    kind: 'table',
    fields: CLUSTER_FIELDS,
    doc: 'State shared with the other instances through Redis: stick tables, per-source limits',
  },
} satisfies Fields;

const TOP_KEYS = keysOf(TOP_FIELDS);
const PROCESS_KEYS = keysOf(PROCESS_FIELDS);
const LOG_KEYS = keysOf(LOG_FIELDS);
const ADMIN_KEYS = keysOf(ADMIN_FIELDS);
const SERVICE_KEYS = keysOf(SERVICE_FIELDS);
const POOL_KEYS = keysOf(POOL_FIELDS);

/** The sub-tables of a service and their keys: a service key found in one was written below its header. */
const SUB_TABLE_KEYS: Readonly<Record<string, readonly string[]>> = {
  health: HEALTH_KEYS,
  pool: POOL_KEYS,
  backend_tls: BACKEND_TLS_KEYS,
  tls: keysOf(TLS_FIELDS),
  discovery: keysOf(DISCOVERY_FIELDS),
  stick: STICK_KEYS,
};

/**
 * `[services.web.health]` then `max_retries = 5`: TOML puts the key in the health table,
 * the most common mistake in these files. Say so, rather than suggest a health key.
 */
function noteMisplacedKeys(raw: Table, header: string, service: string, p: Problems): void {
  for (const [sub, own] of Object.entries(SUB_TABLE_KEYS)) {
    const t = raw[sub];
    if (!isTable(t)) continue;
    for (const key of Object.keys(t)) {
      if (own.includes(key) || !SERVICE_KEYS.includes(key)) continue;
      p.belongsElsewhere(
        `${service}.${sub}.${key}`,
        `not a ${sub} key: ${key} is a key of [${header}], written below the [${header}.${sub}] header, and in TOML every key after a header belongs to that table; move it above [${header}.${sub}]`,
      );
    }
  }
}

/**
 * Keys that take a whole number (counts, or durations written as milliseconds). TOML
 * parses `3.0` to the same JS number as `3`, so load.ts looks for float literals at these
 * keys in the file itself. A new integer or duration key belongs here.
 */
export const WHOLE_NUMBER_KEYS: ReadonlySet<string> = new Set([
  'workers',
  'max_retries',
  'max_connections',
  'queue_size',
  'max_connections_per_source',
  'max_rate_per_source',
  'fall',
  'rise',
  'min_idle',
  'max_idle',
  'size',
  'hash_balance_factor',
  'lease_batch',
  ...HEALTH_WHOLE_NUMBER_KEYS,
  'port',
  ...BACKEND_WHOLE_NUMBER_KEYS,
]);
export const DURATION_KEYS: ReadonlySet<string> = new Set([
  'shutdown_timeout',
  ...PROCESS_DURATION_KEYS,
  'connect_timeout',
  'idle_timeout',
  'retry_delay',
  'queue_timeout',
  'max_lifetime',
  'interval',
  'timeout',
  'idle_ttl',
  'slow_start',
  'hello_timeout',
  'request_timeout',
  ...HEALTH_DURATION_KEYS,
  'min_ttl',
  'max_ttl',
  'wait',
  'access_interval',
  'expire',
  'flush_interval',
  'heartbeat',
  'log_interval',
]);

/** A list of "addr" or "addr/prefix" (IPv4 or IPv6), normalised to "addr/prefix". */
function cidrs(v: unknown, path: string, p: Problems): readonly string[] {
  if (v === undefined) return Object.freeze([]);
  if (!Array.isArray(v)) {
    p.add(path, `expected an array of CIDRs such as ["10.0.0.0/8"], got ${describe(v)}`);
    return Object.freeze([]);
  }
  const out: string[] = [];
  v.forEach((c, i) => {
    const m = typeof c === 'string' ? /^([^/]+)(?:\/(\d{1,3}))?$/.exec(c) : null;
    const fam = m ? isIP(m[1] as string) : 0;
    const prefix = m?.[2] === undefined ? (fam === 6 ? 128 : 32) : Number(m[2]);
    if (!m || fam === 0 || prefix > (fam === 6 ? 128 : 32)) {
      p.add(
        `${path}[${i}]`,
        `expected a CIDR such as "10.0.0.0/8" or "::1/128", got ${describe(c)}`,
      );
      return;
    }
    out.push(`${m[1]}/${prefix}`);
  });
  return Object.freeze(out);
}

/** Merges [defaults] under a service: scalars from the service win, sub-tables merge key by key. */
function withDefaults(defaults: Table, svc: Table): Table {
  const out: Table = { ...defaults, ...svc };
  for (const sub of ['health', 'pool', 'backend_tls', 'tls', 'stick']) {
    if (isTable(defaults[sub]) && isTable(svc[sub])) out[sub] = { ...defaults[sub], ...svc[sub] };
  }
  return out;
}

function parsePool(v: unknown, path: string, p: Problems): PoolConfig {
  const t = table(v, path, p);
  checkKeys(t, POOL_KEYS, path, p);
  const f = POOL_FIELDS;
  const minIdle = integerOf(f.min_idle, t.min_idle, `${path}.min_idle`, p);
  const maxIdle = integerOf(
    f.max_idle,
    t.max_idle,
    `${path}.max_idle`,
    p,
    Math.max(f.max_idle.default, minIdle),
  );
  if (maxIdle < minIdle)
    p.add(`${path}.max_idle`, `must be at least min_idle (${minIdle}), got ${maxIdle}`);
  return Object.freeze({
    minIdle,
    maxIdle,
    idleTtlMs: durationOf(f.idle_ttl, t.idle_ttl, `${path}.idle_ttl`, p),
  });
}

function parseService(
  name: string,
  raw: Table,
  p: Problems,
  opts: ParseOptions,
): ServiceConfig | undefined {
  const path = `services.${name}`;
  checkKeys(raw, SERVICE_KEYS, path, p);
  let listen: ListenAddress | undefined;
  if (raw.listen === undefined)
    p.add(`${path}.listen`, 'missing; every service needs listen = "host:port"');
  else listen = listenAddress(raw.listen, `${path}.listen`, p, opts.allowEphemeralListen ? 0 : 1);

  const backends: BackendConfig[] = [];
  const discovery = parseDiscovery(
    raw.discovery,
    `${path}.discovery`,
    opts.baseDir ?? process.cwd(),
    p,
  );
  const noBackends =
    raw.backends === undefined || (Array.isArray(raw.backends) && raw.backends.length === 0);
  if (noBackends && raw.discovery === undefined) {
    p.add(`${path}.backends`, 'a service needs at least one backend (or a [discovery] table)');
  } else if (noBackends) {
    // Every backend comes from discovery.
  } else if (!Array.isArray(raw.backends)) {
    p.add(
      `${path}.backends`,
      `expected an array of "host:port" or tables, got ${describe(raw.backends)}`,
    );
  } else {
    const seen = new Set<string>();
    raw.backends.forEach((b, i) => {
      const be = parseBackend(b, `${path}.backends[${i}]`, p);
      if (!be) return;
      // be.address is canonical, so "LOCALHOST.:80" is caught as a second "localhost:80".
      if (seen.has(be.address)) p.add(`${path}.backends[${i}]`, `duplicate backend ${be.address}`);
      // A name known to be a literal already listed ("localhost:80" beside "127.0.0.1:80"), either order.
      const twin = literalTwins(be.host, be.port).find((a) => seen.has(a));
      if (twin) p.add(`${path}.backends[${i}]`, `duplicate backend ${be.address} (${twin})`);
      for (const prev of backends)
        if (literalTwins(prev.host, prev.port).includes(be.address))
          p.add(`${path}.backends[${i}]`, `duplicate backend ${be.address} (${prev.address})`);
      seen.add(be.address);
      backends.push(be);
    });
  }
  const backendTls = parseBackendTls(
    raw.backend_tls,
    `${path}.backend_tls`,
    opts.baseDir ?? process.cwd(),
    p,
  );
  const f = SERVICE_FIELDS;
  const svc: ServiceConfig = {
    name,
    listen: listen as ListenAddress,
    balance: oneOfSpec(f.balance, raw.balance, `${path}.balance`, p),
    backends: Object.freeze(backends),
    connectTimeoutMs: durationOf(
      f.connect_timeout,
      raw.connect_timeout,
      `${path}.connect_timeout`,
      p,
    ),
    idleTimeoutMs: durationOf(f.idle_timeout, raw.idle_timeout, `${path}.idle_timeout`, p),
    maxRetries: integerOf(f.max_retries, raw.max_retries, `${path}.max_retries`, p),
    retryDelayMs: durationOf(f.retry_delay, raw.retry_delay, `${path}.retry_delay`, p),
    maxConnections: integerOf(f.max_connections, raw.max_connections, `${path}.max_connections`, p),
    allDown: oneOfSpec(f.all_down, raw.all_down, `${path}.all_down`, p),
    maxLifetimeMs: durationOf(f.max_lifetime, raw.max_lifetime, `${path}.max_lifetime`, p),
    sendProxy:
      raw.send_proxy === undefined
        ? null
        : oneOf(raw.send_proxy, `${path}.send_proxy`, 'v1', f.send_proxy.values, p),
    acceptProxy: booleanOf(f.accept_proxy, raw.accept_proxy, `${path}.accept_proxy`, p),
    trustedProxies: cidrs(raw.trusted_proxies, `${path}.trusted_proxies`, p),
    allow: cidrs(raw.allow, `${path}.allow`, p),
    deny: cidrs(raw.deny, `${path}.deny`, p),
    applyToOpen: booleanOf(f.apply_to_open, raw.apply_to_open, `${path}.apply_to_open`, p),
    maxConnectionsPerSource: integerOf(
      f.max_connections_per_source,
      raw.max_connections_per_source,
      `${path}.max_connections_per_source`,
      p,
    ),
    maxRatePerSource: integerOf(
      f.max_rate_per_source,
      raw.max_rate_per_source,
      `${path}.max_rate_per_source`,
      p,
    ),
    queueSize: integerOf(f.queue_size, raw.queue_size, `${path}.queue_size`, p),
    queueTimeoutMs: durationOf(f.queue_timeout, raw.queue_timeout, `${path}.queue_timeout`, p),
    health: parseHealth(raw.health, `${path}.health`, p, backendTls !== null),
    pool: parsePool(raw.pool, `${path}.pool`, p),
    backendTls,
    sni: sniList(raw.sni, `${path}.sni`, p),
    alpn: alpnList(raw.alpn, `${path}.alpn`, p),
    helloTimeoutMs: durationOf(f.hello_timeout, raw.hello_timeout, `${path}.hello_timeout`, p),
    tls: parseTls(raw.tls, `${path}.tls`, p, opts.baseDir),
    discovery,
    requestTimeoutMs: durationOf(
      f.request_timeout,
      raw.request_timeout,
      `${path}.request_timeout`,
      p,
    ),
    passiveHttp5xx: booleanOf(
      f.passive_http_5xx,
      raw.passive_http_5xx,
      `${path}.passive_http_5xx`,
      p,
    ),
    // shareLimits is settled against [cluster] in parseConfig.
    stick: parseStick(raw.stick, `${path}.stick`, raw.sni !== undefined, p),
    hashBalanceFactor: parseHashBalanceFactor(
      raw.hash_balance_factor,
      `${path}.hash_balance_factor`,
      typeof raw.balance === 'string' ? raw.balance : DEFAULTS.balance,
      p,
    ),
    shareLimits: parseShareLimits(raw.share_limits, `${path}.share_limits`, p) ?? false,
  };
  if (svc.sendProxy && backendTls) {
    // A PROXY header goes before the TLS handshake, and a warm socket is handshaken before its client is known.
    p.add(
      `${path}.send_proxy`,
      'cannot be combined with backend_tls yet (the header would have to precede the handshake)',
    );
  }
  if (svc.alpn && !svc.sni)
    p.add(
      `${path}.alpn`,
      'alpn routes by the ClientHello, alongside sni = [...]; add sni (["*"] takes any name)',
    );
  if (svc.acceptProxy && svc.trustedProxies.length === 0) {
    p.add(
      `${path}.trusted_proxies`,
      'accept_proxy = true needs the addresses allowed to send headers, e.g. ["10.0.0.0/8"]',
    );
  }
  return listen ? Object.freeze(svc) : undefined;
}

/** Why `run` would fail to bind `mine`, said at `check` instead. */
function listenClash(mine: HostPort, theirs: HostPort, owner: string): string {
  return mine.address === theirs.address
    ? `${mine.address} is already the listen address of services.${owner}`
    : `${mine.address} overlaps ${theirs.address}, the listen address of services.${owner}: both take port ${mine.port} on the same address`;
}

/**
 * Validates a parsed TOML document (or an equivalent object) and returns a
 * frozen Config. Throws ConfigError listing every problem found.
 */
/**
 * A bearer token (admin.token, admin.read_token): printable ASCII only, as a
 * header cannot carry control characters, and non-ASCII reaches Node as
 * latin1, so no client could ever send a matching token.
 */
function bearerToken(v: unknown, path: string, p: Problems): string | null {
  if (v === undefined) return null;
  if (typeof v === 'string' && /^[\x21-\x7e]{8,4096}$/.test(v)) return v;
  p.add(
    path,
    'expected 8-4096 printable ASCII characters (no spaces, control or non-ASCII characters)',
  );
  return null;
}

export function parseConfig(raw: unknown, opts: ParseOptions = {}): Config {
  const source = opts.source ?? '<config>';
  const p = new Problems(source);
  const top = isTable(raw) ? raw : {};
  if (!isTable(raw)) p.add('(top)', `expected a table, got ${describe(raw)}`);
  checkKeys(top, TOP_KEYS, '', p);

  const proc = table(top.process, 'process', p);
  checkKeys(proc, PROCESS_KEYS, 'process', p);
  const log = table(top.log, 'log', p);
  checkKeys(log, LOG_KEYS, 'log', p);

  let admin: Config['admin'] = null;
  if (top.admin !== undefined) {
    const a = table(top.admin, 'admin', p);
    checkKeys(a, ADMIN_KEYS, 'admin', p);
    if (a.listen === undefined)
      p.add('admin.listen', 'missing; [admin] needs listen = "127.0.0.1:9900"');
    const hp =
      a.listen === undefined
        ? undefined
        : adminListen(a.listen, a.mode, p, opts.allowEphemeralListen ? 0 : 1, opts.baseDir);
    const token = bearerToken(a.token, 'admin.token', p);
    const readToken = bearerToken(a.read_token, 'admin.read_token', p);
    if (readToken !== null && token === null)
      p.add(
        'admin.read_token',
        'needs admin.token as well: without it, writes would be open while reads are not',
      );
    if (readToken !== null && readToken === token)
      p.add('admin.read_token', 'must differ from admin.token (it grants reads only)');
    // Written as a browser writes Host: "name:port", or a bare "name" behind port 80.
    const allowedHosts: string[] = [];
    if (a.allowed_hosts !== undefined && !Array.isArray(a.allowed_hosts)) {
      p.add(
        'admin.allowed_hosts',
        `expected an array such as ["lb.internal:9900"], got ${describe(a.allowed_hosts)}`,
      );
    }
    (Array.isArray(a.allowed_hosts) ? a.allowed_hosts : []).forEach((h: unknown, i) => {
      const full = parseHostPort(h);
      const bare = typeof h === 'string' ? parseHostPort(`${h}:80`) : full;
      if (!('error' in full)) allowedHosts.push(full.address.toLowerCase());
      // The ":80" added only to parse a bare name goes again.
      else if (!('error' in bare)) allowedHosts.push(bare.address.slice(0, -3).toLowerCase());
      else
        p.add(
          `admin.allowed_hosts[${i}]`,
          `expected "name:port", "[v6]:port" or a bare "name" as a browser sends Host, got ${describe(h)}`,
        );
    });
    if (hp)
      admin = Object.freeze({
        listen: hp,
        token,
        readToken,
        allowedHosts: Object.freeze(allowedHosts),
      });
  }

  const defaults = table(top.defaults, 'defaults', p);
  checkKeys(defaults, SERVICE_KEYS, 'defaults', p);

  const services: ServiceConfig[] = [];
  const rawServices = table(top.services, 'services', p);
  const names = Object.keys(rawServices);
  if (top.services !== undefined && names.length === 0) p.add('services', 'no service defined');
  if (top.services === undefined)
    p.add('services', 'missing; define at least one [services.NAME] table');
  const listens: { name: string; listen: HostPort; sni: boolean }[] = [];
  for (const name of names) {
    if (!/^[A-Za-z0-9_-]+$/.test(name)) {
      p.add(`services.${name}`, 'a service name may hold only letters, digits, "_" and "-"');
      continue;
    }
    const rawSvc = rawServices[name];
    if (!isTable(rawSvc)) {
      p.add(`services.${name}`, `expected a table, got ${describe(rawSvc)}`);
      continue;
    }
    // Sub-tables merge, so a misplaced key may come from [defaults.X] or the service's own [X].
    noteMisplacedKeys(defaults, 'defaults', `services.${name}`, p);
    noteMisplacedKeys(rawSvc, `services.${name}`, `services.${name}`, p);
    const svc = parseService(name, withDefaults(defaults, rawSvc), p, opts);
    if (!svc) continue;
    // The same address, where either routes by SNI, is a shared listener: see checkSharedListens.
    const clash = listens.find(
      (o) =>
        listensOverlap(o.listen, svc.listen) &&
        !(o.listen.address === svc.listen.address && (o.sni || svc.sni)),
    );
    if (clash) p.add(`services.${name}.listen`, listenClash(svc.listen, clash.listen, clash.name));
    listens.push({ name, listen: svc.listen, sni: svc.sni !== null });
    services.push(svc);
  }
  checkSharedListens(services, p);
  if (admin && !isUnixListen(admin.listen)) {
    const tcp = admin.listen;
    const clash = listens.find((o) => listensOverlap(o.listen, tcp));
    if (clash) p.add('admin.listen', listenClash(tcp, clash.listen, clash.name));
  }

  // A service shares its limits when it says so, else when [cluster] share_limits does.
  const cluster = parseCluster(top.cluster, p);
  const settled = services.map((svc) => {
    const own = rawServices[svc.name] as Table;
    const said = own.share_limits ?? defaults.share_limits;
    if (said === true && !cluster)
      p.add(`services.${svc.name}.share_limits`, 'needs [cluster] redis = "redis://host:port"');
    const share = cluster !== null && (typeof said === 'boolean' ? said : cluster.shareLimits);
    return share === svc.shareLimits ? svc : Object.freeze({ ...svc, shareLimits: share });
  });
  const config: Config = {
    source,
    process: processConfig(proc, opts.baseDir ?? process.cwd(), p),
    log: Object.freeze({
      level: oneOfSpec(LOG_FIELDS.level, log.level, 'log.level', p),
      access: booleanOf(LOG_FIELDS.access, log.access, 'log.access', p),
      ...parseLogOutput(log, 'log', opts.baseDir ?? process.cwd(), p),
    }),
    admin,
    services: Object.freeze(settled),
    cluster,
  };
  if (p.list.length > 0) throw new ConfigError(p.list);
  return Object.freeze(config);
}
