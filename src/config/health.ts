import { isIP } from 'node:net';
import { describe } from './duration.js';
import {
  boolean,
  checkKeys,
  durationOf,
  integerOf,
  oneOf,
  oneOfSpec,
  type Problems,
  type Table,
  table,
} from './fields.js';
import { type ProbeStepConfig, probeSteps, STEP_FIELDS } from './health-steps.js';
import { LIMITS } from './limits.js';
import { type Fields, keysOf, listOf } from './spec.js';

/*
 * [services.NAME.health]: which probe, where it goes, what it says, the
 * agent, and what a verdict does to open sessions. Validated here once
 * (house rule 4); the probes get plain frozen data.
 */

export const HEALTH_KINDS = [
  'tcp',
  'http',
  'send-expect',
  'redis',
  'mysql',
  'postgres',
  'smtp',
  'none',
] as const;
export type HealthKind = (typeof HEALTH_KINDS)[number];
export const ON_DOWN = ['none', 'shutdown-sessions'] as const;
export const ON_UP_PRIMARY = ['none', 'shutdown-backup-sessions'] as const;

export interface AgentConfig {
  /** null: the backend's own host. */
  readonly host: string | null;
  readonly port: number;
  readonly intervalMs: number;
}

/** kind = "mysql" or "postgres" with `user`: the probe logs in and out (see health/mysql-login.ts, postgres-login.ts). */
export interface LoginConfig {
  readonly user: string;
  /** null: none configured (trust, or a user without a password). */
  readonly password: string | null;
  /** null: none (MySQL), or the user's name (PostgreSQL). */
  readonly database: string | null;
}

export interface HealthConfig {
  readonly kind: HealthKind;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly fall: number;
  readonly rise: number;
  readonly path: string;
  /** Probe this port instead of the backend's (a sidecar health endpoint); null: the backend's. */
  readonly port: number | null;
  /** Probe this host instead of the backend's; null: the backend's. */
  readonly address: string | null;
  /** kind = "send-expect". */
  readonly steps: readonly ProbeStepConfig[];
  /** kind = "redis": "master" also requires INFO replication to say role:master. */
  readonly role: 'master' | null;
  readonly agent: AgentConfig | null;
  readonly onDown: (typeof ON_DOWN)[number];
  readonly onUpPrimary: (typeof ON_UP_PRIMARY)[number];
  /** Probe over TLS as backend_tls says: a TCP probe completes the handshake, an HTTP probe is HTTPS, a conversation runs inside TLS. */
  readonly tls: boolean;
  /** kind = "mysql" / "postgres": log in as this user and quit cleanly; null: the greeting / SSLRequest probe. */
  readonly login: LoginConfig | null;
}

export const HEALTH_DEFAULTS = Object.freeze({
  kind: 'tcp' as HealthKind,
  intervalMs: 5_000,
  timeoutMs: 2_000,
  fall: 3,
  rise: 2,
  path: '/',
});

const PORT = { kind: 'integer', min: 1, max: 65_535, doc: 'A port, 1-65535' } as const;

/** [services.NAME.health]. */
export const HEALTH_FIELDS = {
  kind: {
    kind: 'enum',
    values: HEALTH_KINDS,
    default: HEALTH_DEFAULTS.kind,
    doc: 'The probe: tcp (connect, then close), http (GET path, 2xx/3xx), send-expect, redis, mysql, postgres, smtp, or none',
  },
  interval: {
    kind: 'duration',
    default: HEALTH_DEFAULTS.intervalMs,
    min: 1,
    max: LIMITS.healthIntervalMs,
    doc: 'Time between probes of one backend',
  },
  timeout: {
    kind: 'duration',
    default: HEALTH_DEFAULTS.timeoutMs,
    min: 1,
    max: LIMITS.connectMs,
    doc: 'Deadline of one probe: the connect and each send-expect step',
  },
  fall: {
    kind: 'integer',
    default: HEALTH_DEFAULTS.fall,
    min: 1,
    max: LIMITS.riseFall,
    doc: 'Consecutive failures that take a healthy backend down',
  },
  rise: {
    kind: 'integer',
    default: HEALTH_DEFAULTS.rise,
    min: 1,
    max: LIMITS.riseFall,
    doc: 'Consecutive successes that bring a down backend back',
  },
  path: {
    kind: 'string',
    default: HEALTH_DEFAULTS.path,
    pattern: '^/[\\x21-\\x7e]*$',
    doc: 'kind = "http": the request path; 2xx/3xx is healthy',
  },
  port: { ...PORT, doc: "Probe this port instead of the backend's (a sidecar health endpoint)" },
  address: { kind: 'string', doc: "Probe this host instead of the backend's (no port)" },
  steps: listOf(
    { kind: 'table', fields: STEP_FIELDS, doc: 'One step: send, then expect' },
    'kind = "send-expect": the conversation, e.g. [{ send = "PING\\r\\n", expect = "+PONG" }]',
  ),
  role: {
    kind: 'enum',
    values: ['master'],
    doc: 'kind = "redis": INFO replication must also say role:master',
  },
  agent_port: {
    ...PORT,
    doc: 'The agent check (HAProxy agent-check) answers on this port; absent: no agent',
  },
  agent_address: {
    kind: 'string',
    doc: "The agent's host (default: the backend's); required with address",
  },
  agent_interval: {
    kind: 'duration',
    min: 1,
    max: LIMITS.healthIntervalMs,
    doc: 'Time between agent checks (default: interval)',
  },
  on_down: {
    kind: 'enum',
    values: ON_DOWN,
    default: 'none' as const,
    doc: '"shutdown-sessions": a backend marked down loses its open sessions',
  },
  on_up_primary: {
    kind: 'enum',
    values: ON_UP_PRIMARY,
    default: 'none' as const,
    doc: '"shutdown-backup-sessions": a primary back up ends the sessions on backups',
  },
  tls: {
    kind: 'boolean',
    doc: 'Probe over TLS as backend_tls says (default: true when the service has backend_tls)',
  },
  user: {
    kind: 'string',
    minLength: 1,
    doc: 'kind = "mysql" or "postgres": log in as this user and quit cleanly (HAProxy option mysql-check user)',
  },
  password: {
    kind: 'string',
    doc: "With user: the user's password (mysql_native_password or caching_sha2_password; PostgreSQL cleartext, md5 or SCRAM-SHA-256)",
  },
  database: {
    kind: 'string',
    minLength: 1,
    doc: 'With user: the database to connect to (PostgreSQL default: the user name; MySQL: none)',
  },
} satisfies Fields;
export const HEALTH_KEYS = keysOf(HEALTH_FIELDS);

/** A host name or IP literal (no port): what `address` and `agent_address` take. */
function host(v: unknown, path: string, p: Problems): string | null {
  if (v === undefined) return null;
  const s = typeof v === 'string' ? v.replace(/^\[(.*)\]$/, '$1') : '';
  const name =
    /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$/;
  if (isIP(s) === 0 && !name.test(s)) {
    p.add(path, `expected a host name or IP address without a port, got ${describe(v)}`);
    return null;
  }
  return s;
}

function port(v: unknown, path: string, p: Problems): number | null {
  if (v === undefined) return null;
  return integerOf(PORT, v, path, p, 0) || null;
}

function login(t: Table, kind: HealthKind, path: string, p: Problems): LoginConfig | null {
  for (const k of ['user', 'password', 'database']) {
    const v = t[k];
    if (v !== undefined && (typeof v !== 'string' || (k !== 'password' && v.length === 0)))
      p.add(
        `${path}.${k}`,
        `expected a${k === 'password' ? '' : ' non-empty'} string, got ${describe(v)}`,
      );
  }
  if (t.user === undefined) {
    for (const k of ['password', 'database'])
      if (t[k] !== undefined) p.add(`${path}.${k}`, 'needs user (the user the probe logs in as)');
    return null;
  }
  if (kind !== 'mysql' && kind !== 'postgres') {
    p.add(`${path}.user`, `applies to kind = "mysql" or "postgres" only (kind is "${kind}")`);
    return null;
  }
  const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
  return Object.freeze({
    user: str(t.user) ?? '',
    password: str(t.password),
    database: str(t.database),
  });
}

/** `backendTls`: the service speaks TLS to its backends, so probes do too unless `tls = false`. */
export function parseHealth(
  v: unknown,
  path: string,
  p: Problems,
  backendTls: boolean,
): HealthConfig {
  const t: Table = table(v, path, p);
  checkKeys(t, HEALTH_KEYS, path, p);
  const d = HEALTH_DEFAULTS;
  const f = HEALTH_FIELDS;
  const kind = oneOfSpec(f.kind, t.kind, `${path}.kind`, p);
  const intervalMs = durationOf(f.interval, t.interval, `${path}.interval`, p);
  let probePath: string = d.path;
  if (t.path !== undefined) {
    if (typeof t.path !== 'string' || !t.path.startsWith('/') || !/^[\x21-\x7e]+$/.test(t.path)) {
      p.add(
        `${path}.path`,
        `expected an absolute request path such as "/health", got ${describe(t.path)}`,
      );
    } else probePath = t.path;
  }
  const tls = boolean(t.tls, `${path}.tls`, backendTls, p);
  if (tls && !backendTls)
    p.add(
      `${path}.tls`,
      'probing over TLS needs [services.NAME.backend_tls] (the CA, server name and client certificate to use)',
    );
  let role: 'master' | null = null;
  if (t.role !== undefined) {
    role = oneOf(t.role, `${path}.role`, 'master', ['master'] as const, p);
    if (kind !== 'redis')
      p.add(`${path}.role`, `applies to kind = "redis" only (kind is "${kind}")`);
  }
  const address = host(t.address, `${path}.address`, p);
  const agentPort = port(t.agent_port, `${path}.agent_port`, p);
  const agentHost = host(t.agent_address, `${path}.agent_address`, p);
  let agent: AgentConfig | null = null;
  if (agentPort === null) {
    for (const k of ['agent_address', 'agent_interval'])
      if (t[k] !== undefined)
        p.add(`${path}.${k}`, 'needs agent_port (the port the agent answers on)');
  } else {
    // The agent sits beside the backend; with probes sent to another host, which host runs it is not ours to guess.
    if (address !== null && agentHost === null)
      p.add(
        `${path}.agent_port`,
        `probes go to address = "${address}", so say where the agent is too: agent_address = "..."`,
      );
    agent = Object.freeze({
      host: agentHost,
      port: agentPort,
      intervalMs: durationOf(
        f.agent_interval,
        t.agent_interval,
        `${path}.agent_interval`,
        p,
        intervalMs,
      ),
    });
  }
  return Object.freeze({
    login: login(t, kind, path, p),
    kind,
    intervalMs,
    timeoutMs: durationOf(f.timeout, t.timeout, `${path}.timeout`, p),
    fall: integerOf(f.fall, t.fall, `${path}.fall`, p),
    rise: integerOf(f.rise, t.rise, `${path}.rise`, p),
    path: probePath,
    port: port(t.port, `${path}.port`, p),
    address,
    steps: probeSteps(t.steps, kind, `${path}.steps`, p),
    role,
    agent,
    onDown: oneOfSpec(f.on_down, t.on_down, `${path}.on_down`, p),
    onUpPrimary: oneOfSpec(f.on_up_primary, t.on_up_primary, `${path}.on_up_primary`, p),
    tls,
  });
}
