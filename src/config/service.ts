import { literalTwins } from './address.js';
import { checkBackendNames } from './backend-names.js';
import { parseBackend } from './backend-settings.js';
import { BACKEND_TLS_KEYS, parseBackendTls } from './backend-tls.js';
import { cidrs } from './cidrs.js';
import { parseShareLimits } from './cluster.js';
import { DEFAULTS } from './defaults.js';
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
  type Problems,
  type Table,
} from './fields.js';
import { HEALTH_KEYS, parseHealth } from './health.js';
import { parseLatencyDecay } from './latency.js';
import { isPortRange, type ListenAddress, listenAddress, listenList } from './listen.js';
import { MIRROR_KEYS, parseMirror } from './mirror.js';
import { POOL_KEYS, parsePool } from './pool.js';
import { parseRoutes } from './route.js';
import { SERVICE_FIELDS } from './service-fields.js';
import { sniList } from './sni.js';
import { type BooleanSpec, type DurationSpec, type IntegerSpec, keysOf } from './spec.js';
import { parseHashBalanceFactor, parseStick, STICK_KEYS } from './stick.js';
import { alpnList, parseTls, TLS_FIELDS } from './tls.js';
import { parseTraffic } from './traffic.js';
import type { BackendConfig, ParseOptions, ServiceConfig } from './types.js';

/** [services.NAME] (and [defaults], the same keys): one service, checked whole. */

export const SERVICE_KEYS = keysOf(SERVICE_FIELDS);

/** The sub-tables of a service and their keys: a service key found in one was written below its header. */
const SUB_TABLE_KEYS: Readonly<Record<string, readonly string[]>> = {
  health: HEALTH_KEYS,
  pool: POOL_KEYS,
  backend_tls: BACKEND_TLS_KEYS,
  tls: keysOf(TLS_FIELDS),
  discovery: keysOf(DISCOVERY_FIELDS),
  stick: STICK_KEYS,
  mirror: MIRROR_KEYS,
};

/**
 * `[services.web.health]` then `max_retries = 5`: TOML puts the key in the health table,
 * the most common mistake in these files. Say so, rather than suggest a health key.
 */
export function noteMisplacedKeys(raw: Table, header: string, service: string, p: Problems): void {
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

/** Merges [defaults] under a service: scalars from the service win, sub-tables merge key by key. */
export function withDefaults(defaults: Table, svc: Table): Table {
  const out: Table = { ...defaults, ...svc };
  for (const sub of ['health', 'pool', 'backend_tls', 'tls', 'stick', 'mirror']) {
    if (isTable(defaults[sub]) && isTable(svc[sub])) out[sub] = { ...defaults[sub], ...svc[sub] };
  }
  return out;
}

/** The keys of SERVICE_FIELDS whose spec is of kind S. */
type KeyOf<S> = {
  [K in keyof typeof SERVICE_FIELDS]: (typeof SERVICE_FIELDS)[K] extends S ? K : never;
}[keyof typeof SERVICE_FIELDS];

export function parseService(
  name: string,
  raw: Table,
  p: Problems,
  opts: ParseOptions,
): ServiceConfig | undefined {
  const path = `services.${name}`;
  checkKeys(raw, SERVICE_KEYS, path, p);
  let listen: ListenAddress | undefined;
  let alsoListen: readonly ListenAddress[] = Object.freeze([]);
  if (raw.listen === undefined)
    p.add(`${path}.listen`, 'missing; every service needs listen = "host:port"');
  else if (Array.isArray(raw.listen) || isPortRange(raw.listen)) {
    const list = Array.isArray(raw.listen) ? raw.listen : [raw.listen];
    const all = listenList(list, `${path}.listen`, p, opts.allowEphemeralListen ? 0 : 1);
    if (all.length > 0 && (raw.sni !== undefined || raw.tls !== undefined) && all.length > 1)
      p.add(
        `${path}.listen`,
        'a list of listen addresses cannot be combined with sni or [tls] yet: give such a service one address',
      );
    listen = all[0];
    alsoListen = Object.freeze(all.slice(1));
  } else listen = listenAddress(raw.listen, `${path}.listen`, p, opts.allowEphemeralListen ? 0 : 1);

  const backends: BackendConfig[] = [];
  const discovery = parseDiscovery(
    raw.discovery,
    `${path}.discovery`,
    p,
    opts.baseDir ?? process.cwd(),
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
    checkBackendNames(backends, `${path}.backends`, p);
  }
  const backendTls = parseBackendTls(
    raw.backend_tls,
    `${path}.backend_tls`,
    p,
    opts.baseDir ?? process.cwd(),
  );
  const f = SERVICE_FIELDS;
  // A plain key of this table: its spec in SERVICE_FIELDS, its value in raw, its errors at path.KEY.
  const dur = (k: KeyOf<DurationSpec>) => durationOf(f[k], raw[k], `${path}.${k}`, p);
  const int = (k: KeyOf<IntegerSpec>) => integerOf(f[k], raw[k], `${path}.${k}`, p);
  const bool = (k: KeyOf<BooleanSpec>) => booleanOf(f[k], raw[k], `${path}.${k}`, p);
  const svc: ServiceConfig = {
    name,
    listen: listen as ListenAddress,
    alsoListen,
    balance: oneOfSpec(f.balance, raw.balance, `${path}.balance`, p),
    backends: Object.freeze(backends),
    connectTimeoutMs: dur('connect_timeout'),
    idleTimeoutMs: dur('idle_timeout'),
    ...parseTraffic(raw, path, p),
    maxRetries: int('max_retries'),
    retryDelayMs: dur('retry_delay'),
    maxConnections: int('max_connections'),
    allDown: oneOfSpec(f.all_down, raw.all_down, `${path}.all_down`, p),
    maxLifetimeMs: dur('max_lifetime'),
    sendProxy:
      raw.send_proxy === undefined
        ? null
        : oneOf(raw.send_proxy, `${path}.send_proxy`, 'v1', f.send_proxy.values, p),
    acceptProxy: bool('accept_proxy'),
    trustedProxies: cidrs(raw.trusted_proxies, `${path}.trusted_proxies`, p),
    allow: cidrs(raw.allow, `${path}.allow`, p),
    deny: cidrs(raw.deny, `${path}.deny`, p),
    applyToOpen: bool('apply_to_open'),
    maxConnectionsPerSource: int('max_connections_per_source'),
    maxRatePerSource: int('max_rate_per_source'),
    queueSize: int('queue_size'),
    queueTimeoutMs: dur('queue_timeout'),
    health: parseHealth(raw.health, `${path}.health`, p, backendTls !== null),
    pool: parsePool(raw.pool, `${path}.pool`, p),
    backendTls,
    sni: sniList(raw.sni, `${path}.sni`, p),
    alpn: alpnList(raw.alpn, `${path}.alpn`, p),
    helloTimeoutMs: dur('hello_timeout'),
    tls: parseTls(raw.tls, `${path}.tls`, p, opts.baseDir),
    discovery,
    requestTimeoutMs: dur('request_timeout'),
    passiveHttp5xx: bool('passive_http_5xx'),
    // shareLimits is settled against [cluster] in parseConfig.
    stick: parseStick(raw.stick, `${path}.stick`, p, raw.sni !== undefined),
    hashBalanceFactor: parseHashBalanceFactor(
      raw.hash_balance_factor,
      `${path}.hash_balance_factor`,
      typeof raw.balance === 'string' ? raw.balance : DEFAULTS.balance,
      p,
    ),
    shareLimits: parseShareLimits(raw.share_limits, `${path}.share_limits`, p) ?? false,
    routes: parseRoutes(
      raw.route,
      {
        path,
        backends,
        discovery: raw.discovery !== undefined,
        readsHello: raw.sni !== undefined || raw.tls !== undefined,
        ports:
          listen && [listen, ...alsoListen].every((l) => l.port !== 0)
            ? [listen, ...alsoListen].map((l) => l.port)
            : null,
      },
      p,
    ),
    latencyDecayMs: parseLatencyDecay(
      raw.latency_decay,
      `${path}.latency_decay`,
      typeof raw.balance === 'string' ? raw.balance : DEFAULTS.balance,
      p,
    ),
    mirror: parseMirror(raw.mirror, `${path}.mirror`, p),
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
