import { ConfigError } from '../errors.js';
import { type HostPort, listensOverlap } from './address.js';
import { isUnixListen } from './admin.js';
import { ADMIN_FIELDS, parseAdmin } from './admin-table.js';
import { CLUSTER_FIELDS, parseCluster } from './cluster.js';
import { describe } from './duration.js';
import { checkKeys, isTable, Problems, type Table, table } from './fields.js';
import { LOG_FIELDS, parseLog } from './log.js';
import { PROCESS_FIELDS, processConfig } from './process.js';
import { noteMisplacedKeys, parseService, SERVICE_KEYS, withDefaults } from './service.js';
import { SERVICE_FIELDS } from './service-fields.js';
import { checkSharedListens } from './sni.js';
import { type Fields, keysOf, keysOfKind } from './spec.js';
import type { Config, ParseOptions, ServiceConfig } from './types.js';

/*
 * The whole config file: the top-level tables, and parseConfig, which checks each
 * with its own module (process.ts, log.ts, admin-table.ts, service.ts on
 * service-fields.ts, cluster.ts) and then what crosses tables (listen clashes,
 * shared listeners, shared limits against [cluster]).
 */

export { ADMIN_FIELDS } from './admin-table.js';
export type { ClusterConfig } from './cluster.js';
export { DEFAULTS } from './defaults.js';
export type { AgentConfig, HealthConfig, HealthKind } from './health.js';
export { HEALTH_KINDS } from './health.js';
export type { ExpectConfig, ProbeStepConfig } from './health-steps.js';
export { LOG_FIELDS } from './log.js';
export { POOL_FIELDS } from './pool.js';
export { PROCESS_FIELDS } from './process.js';
export { SERVICE_FIELDS } from './service-fields.js';
export type { StickConfig } from './stick.js';
export type { TlsCertPair, TlsConfig } from './tls.js';
export * from './types.js';

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

/**
 * Keys that take a whole number (counts, or durations written as milliseconds), and
 * durations, at any depth, from each field's kind. TOML parses `3.0` to the same JS
 * number as `3`, so load.ts looks for float literals at these keys in the file itself.
 */
export const WHOLE_NUMBER_KEYS: ReadonlySet<string> = keysOfKind(TOP_FIELDS, 'integer');
export const DURATION_KEYS: ReadonlySet<string> = keysOfKind(TOP_FIELDS, 'duration');

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

  const admin = parseAdmin(top.admin, p, opts);

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
    const all = [svc.listen, ...svc.alsoListen];
    all.forEach((mine, i) => {
      const clash = listens.find(
        (o) =>
          listensOverlap(o.listen, mine) &&
          !(o.listen.address === mine.address && (o.sni || svc.sni)),
      );
      const at = all.length > 1 ? `services.${name}.listen[${i}]` : `services.${name}.listen`;
      if (clash) p.add(at, listenClash(mine, clash.listen, clash.name));
    });
    for (const l of all) listens.push({ name, listen: l, sni: svc.sni !== null });
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
    log: parseLog(log, opts.baseDir ?? process.cwd(), p),
    admin,
    services: Object.freeze(settled),
    cluster,
  };
  if (p.list.length > 0) throw new ConfigError(p.list);
  return Object.freeze(config);
}
