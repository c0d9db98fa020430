import { isIP } from 'node:net';
import type { ClusterConfig } from './config/cluster.js';
import type { DiscoveryConfig } from './config/discovery.js';
import { effectiveConfig } from './config/effective.js';
import { showMs, type Table } from './config/fields.js';
import { loadConfig, readConfigFile } from './config/load.js';
import { keyPlaces, locate, type Place } from './config/locate.js';
import type { Config, ServiceConfig } from './config/schema.js';
import { shownUrl } from './discovery/http.js';
import { ConfigError, ConfigSyntaxError } from './errors.js';
import { poolSummary, poolWarnings } from './pool/pool-check.js';
import { certificateReport } from './proxy/tls/certificates.js';
import { redacted } from './shared/redis-link.js';

/**
 * `blitz-lb check`: validate a file and say what it sets up, as text for a
 * person or (`--json`) as one object for tools: valid, errors and warnings
 * with their key path, line and column, and the effective config.
 */

export interface Issue {
  readonly message: string;
  /** The dotted key path ("services.web.health.fall"), when the problem has one. */
  readonly path?: string;
  readonly line?: number;
  readonly column?: number;
}

export interface CheckResult {
  readonly file: string;
  readonly valid: boolean;
  readonly errors: Issue[];
  readonly warnings: Issue[];
  /** The effective config in the file's shape (defaults filled in, secrets redacted); null when invalid. */
  readonly config: Table | null;
  /** What text `check` prints on success: services, backends, certificates. */
  readonly summary: string[];
  /** The validated config, when valid. */
  readonly parsed: Config | null;
  /** The errors as the other commands print them (a syntax error with its line and caret). */
  readonly messages: readonly string[];
}

/** "FILE: services.web.x: message" -> its path and message; "FILE: cannot read config: …" has no path. */
function issueOf(problem: string, file: string, places: ReadonlyMap<string, Place>): Issue {
  const rest = problem.startsWith(`${file}: `) ? problem.slice(file.length + 2) : problem;
  const m = /^([A-Za-z0-9_.[\]()-]+): ([\s\S]*)$/.exec(rest);
  if (!m || m[1] === '(top)') return { message: rest };
  const path = m[1] as string;
  const at = locate(places, path);
  return { path, message: m[2] as string, ...(at ?? {}) };
}

const LOOPBACK_NAMES = new Set(['localhost', 'localhost.']);
function isLoopbackHost(host: string): boolean {
  if (LOOPBACK_NAMES.has(host.toLowerCase())) return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

function warningsOf(c: Config, cert: string[], places: ReadonlyMap<string, Place>): Issue[] {
  const out: Issue[] = [];
  const add = (path: string, message: string) =>
    out.push({ path, message, ...(locate(places, path) ?? {}) });
  if (c.admin && !('unix' in c.admin.listen) && !isLoopbackHost(c.admin.listen.host))
    add(
      'admin.listen',
      `${c.admin.listen.address} is not a loopback address: anyone who can reach it can change backends${c.admin.token ? '' : ', and no token is set'}`,
    );
  for (const s of c.services) {
    for (const w of poolWarnings(s, c.process.workers)) add(w.path, w.message);
    if (s.backendTls && !s.backendTls.verify)
      add(
        `services.${s.name}.backend_tls.verify`,
        'false, so backend certificates are not checked (anyone on the path can impersonate a backend)',
      );
  }
  for (const line of cert) {
    const m = /^ {2}tls (.*\(WARNING: expires in \d+ days\))$/.exec(line);
    if (m) out.push({ message: `certificate ${m[1]}` });
  }
  return out;
}

export function runCheck(file: string): CheckResult {
  let text = '';
  try {
    text = readConfigFile(file);
  } catch {
    // loadConfig reads it again and reports why it cannot.
  }
  const places = keyPlaces(text);
  let config: Config;
  try {
    config = loadConfig(file);
  } catch (err) {
    if (err instanceof ConfigSyntaxError) {
      const issue = { message: err.reason, line: err.line, column: err.column };
      return fail(file, [issue], err.problems);
    }
    if (!(err instanceof ConfigError)) throw err;
    return fail(
      file,
      err.problems.map((p) => issueOf(p, file, places)),
      err.problems,
    );
  }
  const summary: string[] = [];
  const problems: string[] = [];
  const certLines: string[] = [];
  for (const s of config.services) {
    summary.push(
      `service ${s.name}: listen ${s.listen.address}, balance ${s.balance}, health ${s.health.kind}${healthExtras(s.health)}, pool ${poolSummary(s.pool, config.process.workers)}${access(s)}`,
    );
    for (const b of s.backends)
      summary.push(`  backend ${b.address} weight ${b.weight}${b.backup ? ' backup' : ''}`);
    summary.push(
      `  http requests: request_timeout ${showMs(s.requestTimeoutMs)}, passive_http_5xx ${s.passiveHttp5xx ? 'on' : 'off'}`,
    );
    if (s.backendTls) summary.push(...backendTlsSummary(s));
    if (s.discovery) summary.push(`  discovery ${discoverySummary(s.discovery)}`);
    if (s.sni)
      summary.push(`  sni ${s.sni.join(', ')}${s.alpn ? `; alpn ${s.alpn.join(', ')}` : ''}`);

    if (s.stick)
      summary.push(
        `  stick on ${s.stick.on}, expire ${showMs(s.stick.expireMs)}, size ${s.stick.size}${config.cluster ? ', shared through [cluster] redis' : ''}`,
      );
    if (s.hashBalanceFactor) summary.push(`  hash_balance_factor ${s.hashBalanceFactor}`);
    if (s.shareLimits) summary.push('  per-source limits shared through [cluster] redis');
    const certs = certificateReport([s], config.source);
    summary.push(...certs.lines);
    certLines.push(...certs.lines);
    problems.push(...certs.errors, ...certs.expired);
  }
  if (problems.length > 0)
    return fail(
      file,
      problems.map((p) => issueOf(p, file, places)),
      problems,
    );
  if (config.admin) summary.push(`admin: ${adminSummary(config.admin)}`);
  if (config.cluster)
    summary.push(
      `cluster: ${redisSummary(config.cluster)} as ${config.cluster.instance}, wait ${showMs(config.cluster.waitMs)}`,
    );
  const pr = config.process;
  summary.push(
    `process: workers ${pr.workers}, pid_file ${pr.pidFile ?? '(none)'}, drain_delay ${showMs(pr.drainDelayMs)}, upgrade_timeout ${showMs(pr.upgradeTimeoutMs)}`,
  );
  return {
    file,
    valid: true,
    errors: [],
    warnings: warningsOf(config, certLines, places),
    config: effectiveConfig(config),
    summary,
    parsed: config,
    messages: [],
  };
}

function fail(file: string, errors: Issue[], messages: readonly string[]): CheckResult {
  const none = { warnings: [], config: null, summary: [], parsed: null };
  return { file, valid: false, errors, messages, ...none };
}

/** What `check --json` prints. */
export function checkJson(r: CheckResult): string {
  const { file, valid, errors, warnings, config } = r;
  return `${JSON.stringify({ file, valid, errors, warnings, config }, null, 2)}\n`;
}

/** The health keys beyond the kind, for `check`'s summary (nothing when they are not used). */
function healthExtras(h: ServiceConfig['health']): string {
  const parts: string[] = [];
  if (h.role) parts.push(`role ${h.role}`);
  if (h.kind === 'send-expect') parts.push(`${h.steps.length} steps`);
  if (h.address !== null || h.port !== null)
    parts.push(`probes ${h.address ?? '(backend)'}:${h.port ?? '(backend)'}`);
  if (h.agent) parts.push(`agent ${h.agent.host ?? '(backend)'}:${h.agent.port}`);
  if (h.onDown !== 'none') parts.push(`on_down ${h.onDown}`);
  if (h.onUpPrimary !== 'none') parts.push(`on_up_primary ${h.onUpPrimary}`);
  return parts.length > 0 ? ` (${parts.join(', ')})` : '';
}

function access(s: ServiceConfig): string {
  if (s.allow.length === 0 && s.deny.length === 0) return '';
  return `, allow ${s.allow.join(' ') || '(all)'}, deny ${s.deny.join(' ') || '(none)'}${s.applyToOpen ? ' (apply_to_open)' : ''}`;
}

/** What `check` says of a service's backend_tls, warnings included. */
function backendTlsSummary(s: ServiceConfig): string[] {
  const t = s.backendTls;
  if (!t) return [];
  const parts = [
    t.verify ? `verify against ${t.ca ? t.ca.file : 'the system store'}` : 'verify OFF',
    `servername ${t.servername ?? "the backend's host name"}`,
    `min_version ${t.minVersion}`,
  ];
  if (t.cert) parts.push(`client certificate ${t.cert.file}`);
  if (t.alpn.length > 0) parts.push(`alpn ${t.alpn.join(',')}`);
  if (s.health.kind !== 'none')
    parts.push(`health probes ${s.health.tls ? 'over TLS' : 'without TLS'}`);
  return [`  backend_tls: ${parts.join(', ')}`];
}

/** One line of `check` output for a [discovery] table. */
function discoverySummary(d: DiscoveryConfig): string {
  const every = `every ${showMs(d.intervalMs)} at most`;
  switch (d.kind) {
    case 'dns':
      return `dns ${d.name} port ${d.port} (${d.family}), TTL clamped to ${showMs(d.minTtlMs)}-${showMs(d.maxTtlMs)}, ${every}${d.resolver ? `, resolver ${d.resolver}` : ''}`;
    case 'srv':
      return `srv ${d.name}, TTL clamped to ${showMs(d.minTtlMs)}-${showMs(d.maxTtlMs)}, ${every}${d.resolver ? `, resolver ${d.resolver}` : ''}`;
    case 'file':
      return `file ${d.path} (watched; re-checked every ${showMs(d.intervalMs)})`;
    case 'http':
      return d.shape === 'consul'
        ? `http ${shownUrl(d.url)} (consul, blocking queries of ${showMs(d.waitMs)})`
        : `http ${shownUrl(d.url)} (polled every ${showMs(d.intervalMs)})`;
    case 'kubernetes': {
      const k = d.kubernetes;
      const port = k?.port === null || k === null ? 'its only port' : `port ${k.port}`;
      const where = k?.kubeconfig
        ? `kubeconfig ${k.kubeconfig}${k.context ? ` (context ${k.context})` : ''}`
        : 'in-cluster';
      return `kubernetes EndpointSlices of ${k?.namespace ? `${k.namespace}/` : ''}${k?.service}, ${port} (watched; ${where})`;
    }
  }
}

/** The admin listen address (a Unix socket with its mode) and which tokens guard it, never their values. */
function adminSummary(a: NonNullable<Config['admin']>): string {
  const mode = 'unix' in a.listen ? ` (mode ${a.listen.mode.toString(8).padStart(4, '0')})` : '';
  const guard = a.readToken ? 'token and read_token' : a.token ? 'token for writes' : 'no token';
  return `${a.listen.address}${mode}, ${guard}`;
}

/** Which Redis [cluster] speaks to: one node, a Sentinel master, or a Redis Cluster. */
function redisSummary(c: ClusterConfig): string {
  const hp = (n: { host: string; port: number }) => `${n.host}:${n.port}`;
  if (c.clusterNodes.length > 0)
    return `Redis Cluster via ${c.clusterNodes.map(hp).join(', ')} (credentials from ${redacted(c.redis)})`;
  if (c.sentinelMaster !== null)
    return `Sentinel master "${c.sentinelMaster}" via ${c.sentinels.map(hp).join(', ')}`;
  return `redis ${redacted(c.redis)}`;
}
