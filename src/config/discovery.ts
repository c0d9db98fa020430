import { isIP } from 'node:net';
import { isAbsolute, resolve } from 'node:path';
import { parseHostPort } from './address.js';
import {
  BACKEND_FIELDS,
  BACKEND_KEYS,
  type BackendSettings,
  settings,
} from './backend-settings.js';
import { describe } from './duration.js';
import {
  booleanOf,
  checkKeys,
  duration,
  durationOf,
  filePath,
  integer,
  oneOf,
  optionalTable,
  type Problems,
  table,
} from './fields.js';
import { MAX_DISCOVERY_FILE_BYTES, MAX_PEM_BYTES, readGuarded, refusalOf } from './guarded-file.js';
import { LIMITS } from './limits.js';
import { type Fields, keysOf } from './spec.js';

/** A Kubernetes object name of the DNS-1123 label kind (a Service, a namespace). */
const DNS_LABEL = '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$';

export const DISCOVERY_KINDS = ['dns', 'srv', 'file', 'http', 'kubernetes'] as const;
export type DiscoveryKind = (typeof DISCOVERY_KINDS)[number];
export const DNS_FAMILIES = ['any', 'ipv4', 'ipv6'] as const;
export const HTTP_SHAPES = ['generic', 'consul'] as const;

/** One `[services.NAME.discovery]`: where the service's backends come from besides `backends`. */
export interface DiscoveryConfig {
  readonly kind: DiscoveryKind;
  /** dns, srv: the name to resolve. */
  readonly name: string;
  /** dns: the port of every backend found. */
  readonly port: number;
  /** dns: A records, AAAA records or both. */
  readonly family: (typeof DNS_FAMILIES)[number];
  /** dns, srv: "ip:port" of the DNS server to ask; null: the system's resolvers. */
  readonly resolver: string | null;
  /** file: the file, absolute. */
  readonly path: string;
  /** http: the URL polled. */
  readonly url: string;
  readonly shape: (typeof HTTP_SHAPES)[number];
  /** dns, srv: at most this long between resolutions; http: the poll period; file: a re-stat besides the watch. */
  readonly intervalMs: number;
  /** One lookup's deadline (a DNS query, an HTTP request beyond a Consul `wait`). */
  readonly timeoutMs: number;
  /** dns, srv: the floor and ceiling put on a record's TTL. */
  readonly minTtlMs: number;
  readonly maxTtlMs: number;
  /** http, shape consul: how long a blocking query may wait for a change. */
  readonly waitMs: number;
  /** An answer with no backend is a failure (the last list stays) unless this is true. */
  readonly allowEmpty: boolean;
  /** Settings of every discovered backend (an entry of a file or generic http answer may set its own). */
  readonly backend: BackendSettings;
  /** kubernetes: the Service whose EndpointSlices are followed, and where to reach the API. */
  readonly kubernetes: KubernetesTarget | null;
}

/** kind = "kubernetes": which Service, which of its ports, and which API server (see kubernetes-config.ts). */
export interface KubernetesTarget {
  /** null: the pod's own namespace (in-cluster), the context's (kubeconfig), else "default". */
  readonly namespace: string | null;
  readonly service: string;
  /** A port's name (as the Service names it), a number (the endpoints' port), or null: the slice's only port. */
  readonly port: string | number | null;
  /** A kubeconfig file, absolute; null: in-cluster (service-account token, KUBERNETES_SERVICE_HOST). */
  readonly kubeconfig: string | null;
  /** kubeconfig: the context to use; null: its current-context. */
  readonly context: string | null;
}

const COMMON_KEYS = ['kind', 'interval', 'timeout', 'allow_empty', 'backend'];
const KIND_KEYS: Readonly<Record<DiscoveryKind, readonly string[]>> = {
  dns: ['name', 'port', 'family', 'resolver', 'min_ttl', 'max_ttl'],
  srv: ['name', 'resolver', 'min_ttl', 'max_ttl'],
  file: ['path'],
  http: ['url', 'shape', 'wait'],
  kubernetes: ['namespace', 'service', 'port', 'kubeconfig', 'context'],
};
/** A lookup at most this often: below it a poll is a load test of the registry. */
const MIN_INTERVAL_MS = 50;
/** Consul caps a blocking query's wait at 10 minutes. */
const MAX_WAIT_MS = 10 * 60_000;

/** [services.NAME.discovery]: every key of every kind (KIND_KEYS says which kind takes which). */
export const DISCOVERY_FIELDS = {
  kind: {
    kind: 'enum',
    values: DISCOVERY_KINDS,
    required: true,
    doc: 'Where backends come from: dns (A/AAAA), srv, file (watched), http (polled; Consul) or kubernetes (EndpointSlices, watched)',
  },
  interval: {
    kind: 'duration',
    min: MIN_INTERVAL_MS,
    max: LIMITS.healthIntervalMs,
    doc: 'dns, srv: at most this long between lookups; http: the poll period; file, kubernetes: a re-check besides the watch (default: dns/srv/kubernetes 30s, file 5s, http 10s)',
  },
  timeout: {
    kind: 'duration',
    min: 1,
    max: LIMITS.connectMs,
    doc: 'Deadline of one lookup (default: http and kubernetes 5s, else 2s)',
  },
  allow_empty: {
    kind: 'boolean',
    default: false,
    doc: 'An answer with no backend is taken (else it is a failure and the last list stays)',
  },
  backend: {
    kind: 'table',
    // A name is each backend's own: the registry's entry, never one for all.
    fields: Object.fromEntries(
      Object.entries(BACKEND_FIELDS).filter(([k]) => k !== 'address' && k !== 'name'),
    ),
    doc: 'Settings of every discovered backend (weight, backup, max_connections, max_rate, slow_start)',
  },
  name: {
    kind: 'string',
    doc: 'dns, srv: the name to resolve ("_pg._tcp.example.internal" for srv)',
  },
  port: {
    kind: 'anyOf',
    options: [
      { kind: 'integer', min: 1, max: 65_535, doc: 'A port number' },
      {
        kind: 'string',
        pattern: '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$',
        doc: "A Service port's name",
      },
    ],
    doc: "dns: the port of every backend found; kubernetes: the Service port's name, or the endpoints' port number (default: the slice's only port)",
  },
  family: {
    kind: 'enum',
    values: DNS_FAMILIES,
    default: 'any',
    doc: 'dns: A records (ipv4), AAAA records (ipv6) or both (any)',
  },
  resolver: {
    kind: 'string',
    doc: 'dns, srv: "ip:port" of the DNS server to ask (default: the system\'s)',
  },
  min_ttl: {
    kind: 'duration',
    default: 1_000,
    min: 0,
    max: LIMITS.healthIntervalMs,
    doc: "dns, srv: the floor put on a record's TTL",
  },
  max_ttl: {
    kind: 'duration',
    default: 3_600_000,
    min: 1,
    max: 24 * 3_600_000,
    doc: "dns, srv: the ceiling put on a record's TTL",
  },
  path: {
    kind: 'string',
    minLength: 1,
    doc: 'file: a .json or .toml file in the backends shape, watched',
  },
  url: { kind: 'string', pattern: '^https?://', doc: 'http: the URL polled (JSON)' },
  shape: {
    kind: 'enum',
    values: HTTP_SHAPES,
    default: 'generic',
    doc: 'http: generic (a backends list) or consul (/v1/health/service/NAME)',
  },
  wait: {
    kind: 'duration',
    default: 60_000,
    min: 1_000,
    max: MAX_WAIT_MS,
    doc: 'http, shape = "consul": how long a blocking query may wait for a change',
  },
  namespace: {
    kind: 'string',
    pattern: DNS_LABEL,
    doc: "kubernetes: the Service's namespace (default: the pod's own in a cluster, the context's with a kubeconfig)",
  },
  service: {
    kind: 'string',
    pattern: DNS_LABEL,
    doc: 'kubernetes: the Service whose EndpointSlices are followed',
  },
  kubeconfig: {
    kind: 'string',
    minLength: 1,
    doc: "kubernetes: a kubeconfig file (default: in-cluster, with the pod's service-account token)",
  },
  context: {
    kind: 'string',
    minLength: 1,
    doc: 'kubernetes, with kubeconfig: the context (default: its current-context)',
  },
} satisfies Fields;
const ALL_KEYS = keysOf(DISCOVERY_FIELDS);
const DEFAULT_INTERVAL_MS: Readonly<Record<DiscoveryKind, number>> = {
  dns: 30_000,
  srv: 30_000,
  file: 5_000,
  http: 10_000,
  kubernetes: 30_000,
};
const LABEL = '[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})';
const NAME_RE = new RegExp(`^(?=.{1,253}$)${LABEL}(?:\\.${LABEL})*\\.?$`);
/** RFC 2782: _service._proto.name */
const SRV_RE = new RegExp(
  `^(?=.{1,253}$)_[A-Za-z0-9-]{1,62}\\._[A-Za-z0-9-]{1,62}(?:\\.${LABEL})+\\.?$`,
);

/** The name keys of dns and srv: a DNS name (and for srv, `_service._proto.name`). */
function dnsName(v: unknown, path: string, kind: DiscoveryKind, p: Problems): string {
  if (v === undefined) {
    const eg = kind === 'srv' ? '"_pg._tcp.example.internal"' : '"db.example.internal"';
    p.add(path, `missing; kind = "${kind}" needs name = ${eg}`);
    return '';
  }
  if (typeof v !== 'string' || !NAME_RE.test(v) || isIP(v) !== 0) {
    p.add(path, `expected a DNS name such as "db.example.internal", got ${describe(v)}`);
    return '';
  }
  if (kind === 'srv' && !SRV_RE.test(v)) {
    p.add(
      path,
      `expected an SRV name shaped _service._proto.name such as "_pg._tcp.example.internal", got ${describe(v)}`,
    );
    return '';
  }
  return v.toLowerCase().replace(/\.$/, '');
}

function dnsPort(v: unknown, path: string, p: Problems): number {
  if (v !== undefined) return integer(v, path, 0, 1, p, 65535);
  p.add(path, 'missing; kind = "dns" needs the port of its backends, e.g. port = 5432');
  return 0;
}

/** `resolver = "127.0.0.1:5353"`: node:dns takes IP addresses only. */
function resolverAddress(v: unknown, path: string, p: Problems): string | null {
  if (v === undefined) return null;
  const hp = parseHostPort(v);
  if ('error' in hp || isIP(hp.host) === 0) {
    p.add(path, `expected "ip:port" of a DNS server such as "127.0.0.1:53", got ${describe(v)}`);
    return null;
  }
  return hp.address;
}

function httpUrl(v: unknown, path: string, p: Problems): string {
  if (v === undefined) {
    p.add(path, 'missing; kind = "http" needs url = "http://host:port/path"');
    return '';
  }
  let u: URL | null = null;
  try {
    if (typeof v === 'string') u = new URL(v);
  } catch {}
  if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:')) {
    p.add(path, `expected an http:// or https:// URL, got ${describe(v)}`);
    return '';
  }
  if (u.username || u.password) {
    p.add(path, 'credentials in the URL would be logged; put none there');
    return '';
  }
  return u.href;
}

/** The file must exist now and be a regular file: a typo should fail `check`, not the first lookup. */
function watchedFile(v: unknown, path: string, baseDir: string, p: Problems): string {
  if (typeof v !== 'string' || v === '') {
    p.add(
      path,
      v === undefined
        ? 'missing; kind = "file" needs path = "backends.json"'
        : `expected a file path, got ${describe(v)}`,
    );
    return '';
  }
  const file = isAbsolute(v) ? v : resolve(baseDir, v);
  if (!/\.(json|toml)$/i.test(file)) {
    p.add(path, `expected a .json or .toml file, got ${describe(v)}`);
    return '';
  }
  // The guarded reader's rules (a regular file within the limit), at start, reload and check.
  try {
    readGuarded(file, MAX_DISCOVERY_FILE_BYTES);
  } catch (err) {
    p.add(path, `${file}: ${refusalOf(err).why}`);
  }
  return file;
}

function k8sName(v: unknown, path: string, what: string, p: Problems): string {
  if (typeof v === 'string' && new RegExp(DNS_LABEL).test(v)) return v;
  p.add(
    path,
    `expected a Kubernetes ${what} name (lower-case letters, digits and "-", at most 63), got ${describe(v)}`,
  );
  return '';
}

function k8sPort(v: unknown, path: string, p: Problems): string | number | null {
  if (v === undefined) return null;
  if (typeof v === 'string') return k8sName(v, path, 'port', p);
  return integer(v, path, 0, 1, p, 65535);
}

/** kind = "kubernetes": the kubeconfig must exist now, as a watched file must. */
function kubernetesTarget(
  t: Record<string, unknown>,
  path: string,
  baseDir: string,
  p: Problems,
): KubernetesTarget {
  if (t.service === undefined)
    p.add(`${path}.service`, 'missing; kind = "kubernetes" needs service = "NAME" (a Service)');
  let kubeconfig: string | null = null;
  if (t.kubeconfig !== undefined) {
    kubeconfig = filePath(t.kubeconfig, `${path}.kubeconfig`, baseDir, 'a file path', p);
    if (kubeconfig !== null)
      try {
        readGuarded(kubeconfig, MAX_PEM_BYTES);
      } catch (err) {
        p.add(`${path}.kubeconfig`, `${kubeconfig}: ${refusalOf(err).why}`);
      }
  }
  let context: string | null = null;
  if (t.context !== undefined) {
    if (kubeconfig === null && t.kubeconfig === undefined)
      p.add(`${path}.context`, 'only with kubeconfig = "..." (in a cluster there is no context)');
    else if (typeof t.context !== 'string' || t.context === '')
      p.add(`${path}.context`, `expected a context's name, got ${describe(t.context)}`);
    else context = t.context;
  }
  return {
    namespace:
      t.namespace === undefined ? null : k8sName(t.namespace, `${path}.namespace`, 'namespace', p),
    service: t.service === undefined ? '' : k8sName(t.service, `${path}.service`, 'Service', p),
    port: k8sPort(t.port, `${path}.port`, p),
    kubeconfig,
    context,
  };
}

/**
 * Validates `[services.NAME.discovery]`. Keys of another kind are errors, so
 * a `url` left under kind = "dns" is caught rather than ignored. A relative
 * `path` is taken from `baseDir` (the config file's directory).
 */
export const parseDiscovery = optionalTable(
  ALL_KEYS,
  (t, path, p, baseDir: string): DiscoveryConfig | null => {
    if (t.kind === undefined) {
      p.add(`${path}.kind`, `missing; one of ${DISCOVERY_KINDS.join(' | ')}`);
      return null;
    }
    const kind = oneOf(t.kind, `${path}.kind`, 'dns', DISCOVERY_KINDS, p);
    const mine = [...COMMON_KEYS, ...KIND_KEYS[kind]];
    for (const key of Object.keys(t)) {
      if (ALL_KEYS.includes(key) && !mine.includes(key)) {
        const owners = DISCOVERY_KINDS.filter((k) => KIND_KEYS[k].includes(key));
        p.add(`${path}.${key}`, `only for kind = ${owners.map((k) => `"${k}"`).join(' or ')}`);
      }
    }
    const has = (key: string) => KIND_KEYS[kind].includes(key);
    const bt = table(t.backend, `${path}.backend`, p);
    checkKeys(
      bt,
      BACKEND_KEYS.filter((k) => k !== 'address'),
      `${path}.backend`,
      p,
    );
    const f = DISCOVERY_FIELDS;
    const minTtlMs = durationOf(f.min_ttl, t.min_ttl, `${path}.min_ttl`, p);
    const maxTtlMs = durationOf(f.max_ttl, t.max_ttl, `${path}.max_ttl`, p);
    if (minTtlMs > maxTtlMs)
      p.add(`${path}.min_ttl`, `must be at most max_ttl (${maxTtlMs}ms), got ${minTtlMs}ms`);
    const cfg: DiscoveryConfig = {
      kind,
      name: has('name') ? dnsName(t.name, `${path}.name`, kind, p) : '',
      port: kind === 'dns' ? dnsPort(t.port, `${path}.port`, p) : 0,
      family: oneOf(t.family, `${path}.family`, 'any', DNS_FAMILIES, p),
      resolver: resolverAddress(t.resolver, `${path}.resolver`, p),
      path: kind === 'file' ? watchedFile(t.path, `${path}.path`, baseDir, p) : '',
      url: kind === 'http' ? httpUrl(t.url, `${path}.url`, p) : '',
      shape: oneOf(t.shape, `${path}.shape`, 'generic', HTTP_SHAPES, p),
      intervalMs: duration(
        t.interval,
        `${path}.interval`,
        DEFAULT_INTERVAL_MS[kind],
        p,
        MIN_INTERVAL_MS,
        LIMITS.healthIntervalMs,
      ),
      timeoutMs: duration(
        t.timeout,
        `${path}.timeout`,
        kind === 'http' || kind === 'kubernetes' ? 5_000 : 2_000,
        p,
        1,
        LIMITS.connectMs,
      ),
      minTtlMs,
      maxTtlMs,
      waitMs: durationOf(f.wait, t.wait, `${path}.wait`, p),
      allowEmpty: booleanOf(f.allow_empty, t.allow_empty, `${path}.allow_empty`, p),
      backend: Object.freeze(settings(bt, `${path}.backend.`, p)),
      kubernetes:
        kind === 'kubernetes' ? Object.freeze(kubernetesTarget(t, path, baseDir, p)) : null,
    };
    if (t.wait !== undefined && cfg.shape !== 'consul')
      p.add(`${path}.wait`, 'only with shape = "consul" (a blocking query)');
    return Object.freeze(cfg);
  },
);
