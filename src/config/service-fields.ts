import { STRATEGY_NAMES } from '../strategy-names.js';
import { BACKEND_FIELDS } from './backend-settings.js';
import { BACKEND_TLS_FIELDS } from './backend-tls.js';
import { CIDRS } from './cidrs.js';
import { SHARE_LIMITS_FIELD } from './cluster.js';
import { DEFAULTS } from './defaults.js';
import { DISCOVERY_FIELDS } from './discovery.js';
import { HEALTH_FIELDS } from './health.js';
import { LATENCY_DECAY_FIELD } from './latency.js';
import { LIMITS, MAX_RETRY_DELAY_MS, MAX_TIMER_MS } from './limits.js';
import { MIRROR_FIELDS } from './mirror.js';
import { POOL_FIELDS } from './pool.js';
import { ROUTE_FIELDS } from './route.js';
import { type Fields, listOf } from './spec.js';
import { HASH_BALANCE_FACTOR_FIELD, STICK_FIELDS } from './stick.js';
import { ALPN_PROTOCOL, TLS_FIELDS } from './tls.js';
import { TRAFFIC_FIELDS } from './traffic.js';
import { ALL_DOWN_POLICIES } from './types.js';

/** "host:FIRST-LAST": one listener a port (listen.ts checks the range and its size). */
const PORT_RANGE_SPEC = {
  kind: 'string',
  pattern: '^.+:[0-9]{1,5}-[0-9]{1,5}$',
  doc: 'A port range "host:FIRST-LAST" (at most 256 ports), one listener a port',
} as const;

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
      PORT_RANGE_SPEC,
      {
        kind: 'list',
        minItems: 1,
        items: {
          kind: 'anyOf',
          options: [{ kind: 'address', doc: '"host:port" or "[v6]:port"' }, PORT_RANGE_SPEC],
          doc: '"host:port", "[v6]:port" or a port range "host:FIRST-LAST"',
        },
        doc: 'Several addresses (a service on several ports), each its own listener',
      },
    ],
    doc: 'Where clients connect: "host:port", "[v6]:port", a port range "host:FIRST-LAST", a list of them, or a passed socket ("systemd:NAME", "fd:N")',
  },
  balance: {
    kind: 'enum',
    values: STRATEGY_NAMES,
    default: DEFAULTS.balance,
    doc: 'round-robin (smooth weighted) | least-connections | random-two | ip-hash (Maglev) | least-latency (peak-EWMA, two choices)',
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
  ...TRAFFIC_FIELDS,
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
  sni: listOf(
    { kind: 'string', doc: 'A host name, "*.domain" or "*" (the default)' },
    'Names this service takes on a listen address it may share, read from the ClientHello',
  ),
  alpn: listOf(ALPN_PROTOCOL, 'With sni: only ClientHellos offering one of these protocols'),
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
  route: {
    kind: 'list',
    items: {
      kind: 'table',
      fields: ROUTE_FIELDS,
      doc: 'A rule: clients matching all its conditions go to its backend group',
    },
    doc: 'Ordered rules, [[services.NAME.route]], first match wins; clients no rule takes use every backend',
  },
  hash_balance_factor: HASH_BALANCE_FACTOR_FIELD,
  latency_decay: LATENCY_DECAY_FIELD,
  mirror: {
    kind: 'table',
    fields: MIRROR_FIELDS,
    doc: "A copy of a sampled share of sessions' client bytes to a shadow backend; its answers are discarded",
  },
  share_limits: SHARE_LIMITS_FIELD,
} satisfies Fields;
