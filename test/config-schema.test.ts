import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import toml from 'toml';
import { BACKEND_FIELDS } from '../src/config/backend-settings.js';
import { durationText } from '../src/config/duration.js';
import { effectiveConfig } from '../src/config/effective.js';
import { configJsonSchema, configJsonSchemaText } from '../src/config/json-schema.js';
import { loadConfig, parseToml } from '../src/config/load.js';
import { parseConfig, TOP_FIELDS } from '../src/config/schema.js';
import type { Fields } from '../src/config/spec.js';
import { toToml } from '../src/config/toml-write.js';
import { runCli, tempConfig } from './helpers/cli.js';
import { validate } from './helpers/json-schema.js';
import { makePki } from './helpers/pki.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SCHEMA_FILE = join(ROOT, 'config.schema.json');
const schema = () => JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as Record<string, unknown>;

test('schema: config.schema.json is what the generator makes now, and `blitz-lb schema` prints it', () => {
  const shipped = readFileSync(SCHEMA_FILE, 'utf8');
  assert.equal(
    shipped,
    configJsonSchemaText(),
    'config.schema.json is stale: run `node dist/src/cli.js schema > config.schema.json`',
  );
  const r = runCli(['schema']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, shipped);
});

test('schema: config.toml and every examples/*.toml name the schema on line 1 and validate against it', () => {
  const files = [
    join(ROOT, 'config.toml'),
    ...readdirSync(join(ROOT, 'examples'))
      .filter((f) => f.endsWith('.toml'))
      .map((f) => join(ROOT, 'examples', f)),
  ];
  assert.ok(files.length >= 3, `config.toml and the examples: ${files.join(', ')}`);
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    const first = /^#:schema (\S+)\n/.exec(text);
    assert.ok(first, `${file}: line 1 is a #:schema directive`);
    assert.equal(
      join(dirname(file), first[1] as string),
      SCHEMA_FILE,
      `${file}: points at the schema`,
    );
    assert.deepEqual(validate(schema(), toml.parse(text)), [], file);
    assert.doesNotThrow(() => loadConfig(file), file);
  }
});

test('schema: the validator of the test finds what the schema forbids (it is not vacuous)', () => {
  const doc = toml.parse(
    '[services.web]\nlisten = 8080\nbalance = "fastest"\nbackends = ["127.0.0.1:1"]\nconect_timeout = "1s"\nidle_timeout = "10 minutes"\nmax_retries = 101\n[services.web.health]\nmax_retries = 1\n[servces.x]\n',
  );
  const errors = validate(schema(), doc);
  for (const want of [
    /services\.web\.listen: expected string/,
    /services\.web\.balance: "fastest" is not one of/,
    /services\.web\.conect_timeout: unknown key/,
    /services\.web\.idle_timeout: matches none of 2 shapes/,
    /services\.web\.max_retries: 101 > maximum 100/,
    /services\.web\.health\.max_retries: unknown key/,
    /\(root\)\.servces: unknown key/,
  ])
    assert.ok(
      errors.some((e) => want.test(e)),
      `${want} in:\n${errors.join('\n')}`,
    );
  assert.deepEqual(validate(schema(), toml.parse('[process]\nworkers = 2\n')), [
    '(root): missing required key services',
  ]);
});

/** A file with every key the validator takes, each table at least once (needs real PEM files and a discovery file). */
function maximalConfig(pki: ReturnType<typeof makePki>, dir: string): string {
  const backendsFile = join(dir, 'backends.json');
  writeFileSync(backendsFile, '["127.0.0.1:9101"]');
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, 'apiVersion: v1\nkind: Config\n');
  return `
[process]
shutdown_timeout = "20s"
workers = 2
pid_file = "/run/blitz-lb.pid"
drain_delay = "5s"
upgrade_timeout = "20s"

[log]
level = "warn"
access = true
destination = "syslog"
file = "blitz-lb.log"
syslog = "tcp://127.0.0.1:6514"
facility = "local3"
format = "json"
hostname = "lb-1"
access_interval = "1m30s"

[admin]
listen = "unix:/run/blitz-lb/admin.sock"
mode = "0660"
token = "s3cret-token"
read_token = "r3ad-only-token"
allowed_hosts = ["lb.internal:9901"]

[defaults]
connect_timeout = "1500ms"
pool = { idle_ttl = "45s" }

[services.web]
listen = "127.0.0.1:8443"
balance = "least-connections"
backends = [
  "127.0.0.1:9001",
  { address = "127.0.0.1:9002", name = "b2", weight = 3, backup = true, max_connections = 7, max_rate = 9, slow_start = "20s" },
]
connect_timeout = "3s"
idle_timeout = "5m"
client_timeout = "1m"
server_timeout = "2m"
tunnel_timeout = "1h"
upload_rate = "10MiB"
download_rate = 5000000
upload_rate_per_source = "500KB"
download_rate_per_source = "1.5MiB/s"
max_retries = 4
retry_delay = "150ms"
max_connections = 900
all_down = "refuse"
queue_size = 10
queue_timeout = "4s"
max_lifetime = "2h"
send_proxy = "v2"
accept_proxy = true
trusted_proxies = ["10.0.0.0/8", "::1"]
max_connections_per_source = 30
max_rate_per_source = 40
allow = ["127.0.0.0/8"]
deny = ["127.0.0.9"]
apply_to_open = true
sni = ["web.test", "*.web.test"]
alpn = ["h2", "http/1.1"]
hello_timeout = "2s"
request_timeout = "3s"
passive_http_5xx = true

[services.web.health]
kind = "http"
interval = "3s"
timeout = "1s"
fall = 5
rise = 4
path = "/ready"
port = 8081
address = "127.0.0.2"
agent_port = 5555
agent_address = "127.0.0.3"
agent_interval = "7s"
on_down = "shutdown-sessions"
on_up_primary = "shutdown-backup-sessions"
tls = false

[services.web.pool]
min_idle = 1
max_idle = 5
idle_ttl = "1m"

[services.web.tls]
cert = "${pki.server.certFile}"
key = "${pki.server.keyFile}"
certificates = [{ cert = "${pki.client.certFile}", key = "${pki.client.keyFile}" }]
alpn = ["h2"]
min_version = "TLSv1.3"
client_ca = "${pki.ca.certFile}"
verify_client = "optional"
groups = ["X25519", "P-256"]

[services.web.discovery]
kind = "dns"
name = "web.internal"
port = 8080
family = "ipv6"
resolver = "127.0.0.1:5353"
min_ttl = "2s"
max_ttl = "10m"
interval = "20s"
timeout = "1s"
allow_empty = true
backend = { weight = 2, backup = false, max_connections = 3, max_rate = 4, slow_start = "5s" }

[services.probe]
listen = "127.0.0.1:8444"
backends = ["127.0.0.1:9003"]

[services.probe.health]
kind = "send-expect"
steps = [
  { send = "PING\\r\\n", expect = "+PONG" },
  { send_hex = "2a31", expect_regex = "^\\\\+OK" },
  { expect_hex = "2b4f4b" },
]
tls = true

[services.probe.backend_tls]
ca = "${pki.ca.certFile}"
servername = "backend.test"
cert = "${pki.client.certFile}"
key = "${pki.client.keyFile}"
alpn = ["h2"]
min_version = "TLSv1.3"
verify = false

[services.probe.discovery]
kind = "http"
url = "http://127.0.0.1:8500/v1/health/service/probe"
shape = "consul"
wait = "30s"

[services.web.stick]
on = "sni"
expire = "20m"
size = 5000

[services.routed]
listen = "127.0.0.1:8497"
sni = ["*"]
backends = [{ address = "127.0.0.1:9006", name = "r1" }, "127.0.0.1:9007"]

[[services.routed.route]]
name = "internal"
source = ["10.20.0.0/16"]
port = [8497]
sni = ["db.example.com"]
alpn = ["postgresql"]
backends = ["r1"]

[services.db]
listen = "127.0.0.1:8446"
backends = ["127.0.0.1:9005"]
health = { kind = "postgres", user = "probe", password = "secret", database = "app" }

[services.cache]
listen = "127.0.0.1:8445"
backends = ["127.0.0.1:9004"]
health = { kind = "redis", role = "master" }
balance = "ip-hash"
hash_balance_factor = 150
share_limits = true

[services.shadow]
listen = "127.0.0.1:8457"
backends = ["127.0.0.1:9006"]
balance = "least-latency"
latency_decay = "30s"
mirror = { backend = "127.0.0.1:9106", percent = 10, buffer = 2097152 }

[cluster]
redis = "redis://user:pw@127.0.0.1:6379/2"
prefix = "lb-test:"
instance = "lb-1"
wait = "8ms"
flush_interval = "20ms"
heartbeat = "1s"
share_limits = false
lease_batch = 4
log_interval = "10s"
sentinels = ["127.0.0.1:26379", "[::1]:26380"]
sentinel_master = "main"

[services.cache.discovery]
kind = "file"
path = "${backendsFile}"

[services.pods]
listen = "127.0.0.1:8447"

[services.pods.discovery]
kind = "kubernetes"
namespace = "shop"
service = "web"
port = "http"
kubeconfig = "${kubeconfig}"
context = "prod"
`;
}

/** Every key path written in a parsed TOML document ("services.web.health.fall"; arrays of tables as "[]"). */
function keyPaths(v: unknown, path: string, out: Set<string>): Set<string> {
  if (Array.isArray(v)) for (const x of v) keyPaths(x, `${path}[]`, out);
  else if (typeof v === 'object' && v !== null)
    for (const [k, x] of Object.entries(v)) {
      const at = path ? `${path}.${k}` : k;
      out.add(at);
      keyPaths(x, at, out);
    }
  return out;
}

/** Every key path the specs describe, services and defaults under their names in `doc`. */
function specPaths(fields: Fields, path: string, out: Set<string>, names: string[]): Set<string> {
  for (const [k, f] of Object.entries(fields)) {
    const at = path ? `${path}.${k}` : k;
    out.add(at);
    const inner = f.kind === 'list' ? f.items : f;
    const tail = f.kind === 'list' ? `${at}[]` : at;
    if (inner.kind === 'table') specPaths(inner.fields, tail, out, names);
    if (inner.kind === 'anyOf')
      for (const o of inner.options) if (o.kind === 'table') specPaths(o.fields, tail, out, names);
    if (inner.kind === 'map' && inner.values.kind === 'table')
      for (const n of names) {
        out.add(`${at}.${n}`);
        specPaths(inner.values.fields, `${at}.${n}`, out, names);
      }
  }
  return out;
}

/**
 * The maximal file with [cluster] on a Redis Cluster instead of Sentinel: the
 * two exclude each other (and a Cluster has only database 0), so the keys of
 * one are covered by this second file.
 */
function clusterVariant(text: string): string {
  const out = text
    .replace('redis://user:pw@127.0.0.1:6379/2', 'redis://user:pw@127.0.0.1:6379')
    .replace(
      /sentinels = .*\nsentinel_master = "main"\n/,
      'redis_cluster = ["127.0.0.1:7000", "[::1]:7001"]\n',
    );
  assert.notEqual(out, text);
  return out;
}

test('schema: a file with every key the validator takes validates against the schema, and the file covers every key of the schema', (t) => {
  const pki = makePki(t);
  const file = tempConfig(t, maximalConfig(pki, pki.dir));
  const text = readFileSync(file, 'utf8');
  const config = loadConfig(file);
  assert.deepEqual(validate(schema(), toml.parse(text)), []);
  const variant = clusterVariant(text);
  assert.deepEqual(validate(schema(), toml.parse(variant)), []);
  assert.equal(loadConfig(tempConfig(t, variant)).cluster?.clusterNodes.length, 2);
  // Each key written (in either file) is one the schema describes at that place, and the reverse.
  const written = keyPaths(toml.parse(text), '', new Set());
  keyPaths(toml.parse(variant), '', written);
  const names = Object.keys(toml.parse(text).services as object);
  const described = specPaths(TOP_FIELDS, '', new Set(), names);
  const missing = [...written].filter((k) => !described.has(k));
  assert.deepEqual(missing, [], 'keys the validator took that the schema lacks');
  // Which spec keys the file leaves out, per table (a key may be set in any one service).
  const generic = (k: string) => k.replace(/^services\.[^.]+/, 'services.*');
  const writtenAny = new Set([...written].map(generic));
  const unwritten = [...described].map(generic).filter((k) => !writtenAny.has(k));
  // [defaults] takes every service key; one of them is enough to show it is read.
  assert.deepEqual(
    [...new Set(unwritten.filter((k) => !k.startsWith('defaults.')))],
    [],
    'keys the schema describes that the maximal file does not set: add them to it',
  );
  assert.equal(config.services.length, 7);
});

test('check --print: a Redis Cluster [cluster] parses back to the same config (redis_cluster kept, the password redacted)', (t) => {
  const pki = makePki(t);
  const config = loadConfig(tempConfig(t, clusterVariant(maximalConfig(pki, pki.dir))));
  const printed = toToml(effectiveConfig(config));
  assert.doesNotMatch(printed, /user:pw@/);
  const again = parseConfig(parseToml(printed, 'printed.toml'), { source: config.source });
  assert.deepEqual(
    { ...again.cluster, redis: 'redis://user:pw@127.0.0.1:6379' },
    { ...config.cluster },
  );
});

test('check --print: the effective config parses back to the same config (every key, defaults filled in)', (t) => {
  const pki = makePki(t);
  const file = tempConfig(t, maximalConfig(pki, pki.dir));
  const config = loadConfig(file);
  const printed = toToml(effectiveConfig(config));
  const again = parseConfig(parseToml(printed, 'printed.toml'), { source: config.source });
  // The tokens and the login probe's password are redacted; everything else is the same.
  const services = again.services.map((s) =>
    s.health.login
      ? { ...s, health: { ...s.health, login: { ...s.health.login, password: 'secret' } } }
      : s,
  );
  assert.deepEqual(
    {
      ...again,
      services,
      admin: { ...again.admin, token: 's3cret-token', readToken: 'r3ad-only-token' },
      cluster: { ...again.cluster, redis: 'redis://user:pw@127.0.0.1:6379/2' },
    },
    {
      ...config,
      admin: { ...config.admin },
    },
  );
  assert.doesNotMatch(printed, /s3cret-token/);
  assert.doesNotMatch(printed, /r3ad-only-token/);
  assert.doesNotMatch(printed, /user:pw@/);
  assert.doesNotMatch(printed, /"secret"/);
  assert.deepEqual(
    validate(schema(), toml.parse(printed)),
    [],
    'the effective config fits the schema',
  );
  // `check --print` on the command line: a comment line, then that TOML.
  const r = runCli(['check', '--config', file, '--print']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, `# ${file}: the effective config, every default filled in\n${printed}`);
  assert.match(r.stderr, /warning: services\.probe\.backend_tls\.verify: false/);
});

test('check --print: a bare file shows every default the spec declares, as the schema says it', (t) => {
  const file = tempConfig(
    t,
    '[services.web]\nlisten = "127.0.0.1:8080"\nbackends = ["127.0.0.1:9001"]\n',
  );
  const eff = effectiveConfig(loadConfig(file)) as Record<string, Record<string, unknown>>;
  const web = (eff.services as Record<string, Record<string, unknown>>).web as Record<
    string,
    unknown
  >;
  const tables: [Fields, Record<string, unknown>, string][] = [];
  const top = TOP_FIELDS;
  tables.push([top.process.fields, eff.process as Record<string, unknown>, 'process']);
  tables.push([top.log.fields, eff.log as Record<string, unknown>, 'log']);
  const svc = top.services.values.fields;
  tables.push([svc, web, 'services.web']);
  for (const sub of ['health', 'pool'] as const)
    tables.push([svc[sub].fields, web[sub] as Record<string, unknown>, `services.web.${sub}`]);
  tables.push([
    BACKEND_FIELDS,
    (web.backends as Record<string, unknown>[])[0] as Record<string, unknown>,
    'services.web.backends[0]',
  ]);
  let compared = 0;
  for (const [fields, effective, path] of tables) {
    for (const [k, f] of Object.entries(fields)) {
      if (!('default' in f) || f.default === undefined) continue;
      const want =
        f.kind === 'duration' ? (f.default === 0 ? 0 : durationText(f.default)) : f.default;
      assert.deepEqual(effective[k], want, `${path}.${k}: the validator's default is the spec's`);
      compared++;
    }
  }
  assert.ok(compared >= 30, `compared ${compared} defaults`);
  // The schema carries the same defaults to editors.
  const s = configJsonSchema() as {
    properties: {
      services: { additionalProperties: { properties: Record<string, { default?: unknown }> } };
    };
  };
  assert.equal(
    s.properties.services.additionalProperties.properties.connect_timeout?.default,
    '2s',
  );
  assert.equal(s.properties.services.additionalProperties.properties.max_retries?.default, 3);
});
