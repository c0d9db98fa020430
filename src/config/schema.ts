import { isIP } from 'node:net';
import { STRATEGY_NAMES, type StrategyName } from '../balancer/names.js';
import { ConfigError } from '../errors.js';
import { type HostPort, listensOverlap, parseHostPort } from './address.js';
import { BACKEND_WHOLE_NUMBER_KEYS, parseBackend } from './backend-settings.js';
import { type BackendTlsConfig, parseBackendTls } from './backend-tls.js';
import { type DiscoveryConfig, parseDiscovery } from './discovery.js';
import { describe } from './duration.js';
import {
  boolean,
  checkKeys,
  duration,
  hostPort,
  integer,
  isTable,
  oneOf,
  Problems,
  type Table,
  table,
} from './fields.js';
import {
  HEALTH_DEFAULTS,
  HEALTH_DURATION_KEYS,
  HEALTH_WHOLE_NUMBER_KEYS,
  type HealthConfig,
  parseHealth,
} from './health.js';
import { LIMITS, MAX_RETRY_DELAY_MS } from './limits.js';
import { type ListenAddress, listenAddress } from './listen.js';
import {
  PROCESS_DURATION_KEYS,
  PROCESS_KEYS,
  type ProcessConfig,
  processConfig,
} from './process.js';
import { checkSharedListens, sniList } from './sni.js';
import { alpnList, parseTls, type TlsConfig } from './tls.js';

export type {
  AgentConfig,
  ExpectConfig,
  HealthConfig,
  HealthKind,
  ProbeStepConfig,
} from './health.js';
export { HEALTH_KINDS } from './health.js';
export type { TlsCertPair, TlsConfig } from './tls.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const ALL_DOWN_POLICIES = ['try-all', 'refuse'] as const;
export type AllDownPolicy = (typeof ALL_DOWN_POLICIES)[number];

/**
 * A cluster worker's share of a limit that was set but is smaller than the
 * number of workers, in the workers that get none of it (see cluster/share.ts):
 * take no session under that limit. Never read from a file, where limits are
 * >= 0 and 0 means "no limit". Negative, so `count >= limit` checks refuse it
 * as they stand; checks that skip a limit of 0 test `!== 0`.
 */
export const NO_SHARE = -1;

export interface BackendConfig extends HostPort {
  readonly weight: number;
  readonly backup: boolean;
  /** Open sessions on this backend; at the cap it takes no new ones (0: no cap; NO_SHARE: none). */
  readonly maxConnections: number;
  /** New sessions a second to this backend (0: no limit; NO_SHARE: none). */
  readonly maxRate: number;
  /** Ramp from 10 % to full weight over this long after coming back up (0: off). */
  readonly slowStartMs: number;
}

export interface PoolConfig {
  readonly minIdle: number;
  readonly maxIdle: number;
  readonly idleTtlMs: number;
}

export interface ServiceConfig {
  readonly name: string;
  /** "host:port" to bind, or a passed socket ("systemd:NAME", "fd:N"): see config/listen.ts. */
  readonly listen: ListenAddress;
  readonly balance: StrategyName;
  readonly backends: readonly BackendConfig[];
  readonly connectTimeoutMs: number;
  /** 0 disables the idle deadline. */
  readonly idleTimeoutMs: number;
  readonly maxRetries: number;
  readonly retryDelayMs: number;
  /** Open sessions of this service (>= 1 in a file; NO_SHARE: none in this worker). */
  readonly maxConnections: number;
  readonly allDown: AllDownPolicy;
  /** Sessions older than this are closed, busy or not (0: off). Defeats slowloris-style trickles. */
  readonly maxLifetimeMs: number;
  /** Write a PROXY protocol header to the backend before the client's bytes. */
  readonly sendProxy: 'v1' | 'v2' | null;
  /** Expect a PROXY protocol header (v1 or v2) from clients in trusted_proxies; refuse everyone else. */
  readonly acceptProxy: boolean;
  /** CIDRs ("10.0.0.0/8", "127.0.0.1", "::1/128") allowed to send PROXY headers. */
  readonly trustedProxies: readonly string[];
  /** Clients allowed in (CIDRs; empty: everyone not denied). */
  readonly allow: readonly string[];
  /** Clients refused (CIDRs); deny wins over allow. */
  readonly deny: readonly string[];
  /** A reload that changes allow/deny ends the open sessions of clients now refused. */
  readonly applyToOpen: boolean;
  /** Open sessions per client address (0: no limit; NO_SHARE: none). */
  readonly maxConnectionsPerSource: number;
  /** New sessions a second per client address (0: no limit; NO_SHARE: none). */
  readonly maxRatePerSource: number;
  /** Clients that may wait for a backend slot when every backend is at its cap (0 or NO_SHARE: refuse at once). */
  readonly queueSize: number;
  readonly queueTimeoutMs: number;
  readonly health: HealthConfig;
  readonly pool: PoolConfig;
  /** TLS to the backends (null: plain TCP). */
  readonly backendTls: BackendTlsConfig | null;
  /** Names this service takes on a listen address it may share (see config/sni.ts); null: no ClientHello is read. */
  readonly sni: readonly string[] | null;
  /** With sni: only hellos offering one of these protocols (null: any). */
  readonly alpn: readonly string[] | null;
  /** How long a client has to send its whole ClientHello (and, when terminating, to finish the handshake). */
  readonly helloTimeoutMs: number;
  /** Terminate TLS here; null: bytes pass through untouched. */
  readonly tls: TlsConfig | null;
  /** Backends found at run time besides `backends` (null: none). */
  readonly discovery: DiscoveryConfig | null;
}

export interface Config {
  /** Where the config came from, for messages ("config.toml", "<inline>"). */
  readonly source: string;
  readonly process: ProcessConfig;
  readonly log: { readonly level: LogLevel; readonly access: boolean };
  readonly admin: {
    readonly listen: HostPort;
    readonly token: string | null;
    /** Host header values the admin server accepts besides its listen address and loopback names. */
    readonly allowedHosts: readonly string[];
  } | null;
  readonly services: readonly ServiceConfig[];
}

export interface ParseOptions {
  /** Name used in error messages. */
  source?: string;
  /** Allow `listen` on port 0 (an OS-chosen port): for tests and embedding, never from a file. */
  allowEphemeralListen?: boolean;
  /** Where relative file names (certificates, a discovery `path`) are taken from: the config file's directory; default the working directory. */
  baseDir?: string;
}

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
  health: HEALTH_DEFAULTS,
  pool: { minIdle: 2, maxIdle: 10, idleTtlMs: 30_000 },
});

const TOP_KEYS = ['process', 'log', 'admin', 'defaults', 'services'];
const LOG_KEYS = ['level', 'access'];
const ADMIN_KEYS = ['listen', 'token', 'allowed_hosts'];
const SERVICE_KEYS = [
  'listen',
  'balance',
  'backends',
  'connect_timeout',
  'idle_timeout',
  'max_retries',
  'retry_delay',
  'max_connections',
  'all_down',
  'queue_size',
  'queue_timeout',
  'max_lifetime',
  'send_proxy',
  'accept_proxy',
  'trusted_proxies',
  'max_connections_per_source',
  'max_rate_per_source',
  'allow',
  'deny',
  'apply_to_open',
  'health',
  'pool',
  'backend_tls',
  'sni',
  'alpn',
  'hello_timeout',
  'tls',
  'discovery',
];
const POOL_KEYS = ['min_idle', 'max_idle', 'idle_ttl'];

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
  ...HEALTH_DURATION_KEYS,
  'min_ttl',
  'max_ttl',
  'wait',
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
  for (const sub of ['health', 'pool', 'backend_tls', 'tls']) {
    if (isTable(defaults[sub]) && isTable(svc[sub])) out[sub] = { ...defaults[sub], ...svc[sub] };
  }
  return out;
}

function parsePool(v: unknown, path: string, p: Problems): PoolConfig {
  const t = table(v, path, p);
  checkKeys(t, POOL_KEYS, path, p);
  const d = DEFAULTS.pool;
  const minIdle = integer(t.min_idle, `${path}.min_idle`, d.minIdle, 0, p, LIMITS.poolIdle);
  const maxIdle = integer(
    t.max_idle,
    `${path}.max_idle`,
    Math.max(d.maxIdle, minIdle),
    0,
    p,
    LIMITS.poolIdle,
  );
  if (maxIdle < minIdle)
    p.add(`${path}.max_idle`, `must be at least min_idle (${minIdle}), got ${maxIdle}`);
  return Object.freeze({
    minIdle,
    maxIdle,
    idleTtlMs: duration(t.idle_ttl, `${path}.idle_ttl`, d.idleTtlMs, p, 1),
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
  const svc: ServiceConfig = {
    name,
    listen: listen as ListenAddress,
    balance: oneOf(raw.balance, `${path}.balance`, DEFAULTS.balance, STRATEGY_NAMES, p),
    backends: Object.freeze(backends),
    connectTimeoutMs: duration(
      raw.connect_timeout,
      `${path}.connect_timeout`,
      DEFAULTS.connectTimeoutMs,
      p,
      1,
      LIMITS.connectMs,
    ),
    idleTimeoutMs: duration(raw.idle_timeout, `${path}.idle_timeout`, DEFAULTS.idleTimeoutMs, p),
    maxRetries: integer(
      raw.max_retries,
      `${path}.max_retries`,
      DEFAULTS.maxRetries,
      0,
      p,
      LIMITS.retries,
    ),
    retryDelayMs: duration(
      raw.retry_delay,
      `${path}.retry_delay`,
      DEFAULTS.retryDelayMs,
      p,
      0,
      MAX_RETRY_DELAY_MS,
    ),
    maxConnections: integer(
      raw.max_connections,
      `${path}.max_connections`,
      DEFAULTS.maxConnections,
      1,
      p,
      LIMITS.connections,
    ),
    allDown: oneOf(raw.all_down, `${path}.all_down`, DEFAULTS.allDown, ALL_DOWN_POLICIES, p),
    maxLifetimeMs: duration(raw.max_lifetime, `${path}.max_lifetime`, 0, p),
    sendProxy:
      raw.send_proxy === undefined
        ? null
        : oneOf(raw.send_proxy, `${path}.send_proxy`, 'v1', ['v1', 'v2'] as const, p),
    acceptProxy: boolean(raw.accept_proxy, `${path}.accept_proxy`, false, p),
    trustedProxies: cidrs(raw.trusted_proxies, `${path}.trusted_proxies`, p),
    allow: cidrs(raw.allow, `${path}.allow`, p),
    deny: cidrs(raw.deny, `${path}.deny`, p),
    applyToOpen: boolean(raw.apply_to_open, `${path}.apply_to_open`, false, p),
    maxConnectionsPerSource: integer(
      raw.max_connections_per_source,
      `${path}.max_connections_per_source`,
      0,
      0,
      p,
      LIMITS.connections,
    ),
    maxRatePerSource: integer(
      raw.max_rate_per_source,
      `${path}.max_rate_per_source`,
      0,
      0,
      p,
      LIMITS.rate,
    ),
    queueSize: integer(
      raw.queue_size,
      `${path}.queue_size`,
      DEFAULTS.queueSize,
      0,
      p,
      LIMITS.connections,
    ),
    queueTimeoutMs: duration(
      raw.queue_timeout,
      `${path}.queue_timeout`,
      DEFAULTS.queueTimeoutMs,
      p,
      1,
    ),
    health: parseHealth(raw.health, `${path}.health`, p, backendTls !== null),
    pool: parsePool(raw.pool, `${path}.pool`, p),
    backendTls,
    sni: sniList(raw.sni, `${path}.sni`, p),
    alpn: alpnList(raw.alpn, `${path}.alpn`, p),
    helloTimeoutMs: duration(
      raw.hello_timeout,
      `${path}.hello_timeout`,
      DEFAULTS.helloTimeoutMs,
      p,
      1,
      LIMITS.connectMs,
    ),
    tls: parseTls(raw.tls, `${path}.tls`, p, opts.baseDir),
    discovery,
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
        : hostPort(a.listen, 'admin.listen', p, opts.allowEphemeralListen ? 0 : 1);
    let token: string | null = null;
    if (a.token !== undefined) {
      // Printable ASCII only: a header cannot carry control characters, and non-ASCII
      // reaches Node as latin1, so no client could ever send a matching token.
      if (typeof a.token !== 'string' || !/^[\x21-\x7e]{8,4096}$/.test(a.token)) {
        p.add(
          'admin.token',
          'expected 8-4096 printable ASCII characters (no spaces, control or non-ASCII characters)',
        );
      } else token = a.token;
    }
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
    if (hp) admin = Object.freeze({ listen: hp, token, allowedHosts: Object.freeze(allowedHosts) });
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
  if (admin) {
    const adminListen = admin.listen;
    const clash = listens.find((o) => listensOverlap(o.listen, adminListen));
    if (clash) p.add('admin.listen', listenClash(adminListen, clash.listen, clash.name));
  }

  const config: Config = {
    source,
    process: processConfig(proc, opts.baseDir ?? process.cwd(), p),
    log: Object.freeze({
      level: oneOf(log.level, 'log.level', DEFAULTS.logLevel, LOG_LEVELS, p),
      access: boolean(log.access, 'log.access', false, p),
    }),
    admin,
    services: Object.freeze(services),
  };
  if (p.list.length > 0) throw new ConfigError(p.list);
  return Object.freeze(config);
}
