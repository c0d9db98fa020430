import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { test } from 'node:test';
import { loadConfig, parseToml } from '../src/config/load.js';
import { parseConfig } from '../src/config/schema.js';
import { runCli, tempConfig } from './helpers/cli.js';

const EVERY_KEY = `
[process]
shutdown_timeout = "15s"
workers = 3

[log]
level = "debug"
access = true

[admin]
listen = "127.0.0.1:9900"

[defaults]
connect_timeout = "750ms"
max_retries = 5
health = { interval = "1s", fall = 4 }

[services.web]
listen = "127.0.0.1:8080"
balance = "round-robin"
backends = [
  "127.0.0.1:9001",
  { address = "127.0.0.1:9002", weight = 2 },
  { address = "localhost:9003", backup = true },
  "[::1]:9004",
  { address = "127.0.0.1:9005", max_connections = 100, max_rate = 50, slow_start = "30s" },
]
idle_timeout = "10m"
retry_delay = 250
max_connections = 500
all_down = "refuse"
queue_size = 50
queue_timeout = "2s"

[services.web.health]
kind = "http"
timeout = "2s"
rise = 3
path = "/healthz"

[services.web.pool]
min_idle = 3
max_idle = 8
idle_ttl = "1m"

[services.db]
listen = "[::1]:3306"
balance = "least-connections"
backends = ["db1.internal:3306"]
max_retries = 1
`;

test('a file with every key parses to the values written, defaults filled in', (t) => {
  const c = loadConfig(tempConfig(t, EVERY_KEY));
  assert.equal(c.process.shutdownTimeoutMs, 15_000);
  assert.equal(c.process.workers, 3);
  assert.deepEqual(c.log, { level: 'debug', access: true });
  assert.equal(c.admin?.listen.address, '127.0.0.1:9900');
  const [web, db] = c.services;
  assert.ok(web && db);
  assert.equal(web.listen.address, '127.0.0.1:8080');
  assert.equal(web.balance, 'round-robin');
  assert.deepEqual(
    web.backends.map((b) => [b.address, b.weight, b.backup]),
    [
      ['127.0.0.1:9001', 1, false],
      ['127.0.0.1:9002', 2, false],
      ['localhost:9003', 1, true],
      ['[::1]:9004', 1, false],
      ['127.0.0.1:9005', 1, false],
    ],
  );
  assert.deepEqual(
    [web.backends[4]?.maxConnections, web.backends[4]?.maxRate, web.backends[4]?.slowStartMs],
    [100, 50, 30_000],
  );
  assert.deepEqual(
    [web.backends[0]?.maxConnections, web.backends[0]?.maxRate, web.backends[0]?.slowStartMs],
    [0, 0, 0],
  );
  assert.deepEqual([web.queueSize, web.queueTimeoutMs], [50, 2000]);
  assert.deepEqual([db.queueSize, db.queueTimeoutMs], [1000, 5000]);
  assert.equal(web.backends[3]?.host, '::1');
  assert.equal(web.connectTimeoutMs, 750, 'inherited from [defaults]');
  assert.equal(web.maxRetries, 5, 'inherited from [defaults]');
  assert.equal(web.idleTimeoutMs, 600_000);
  assert.equal(web.retryDelayMs, 250, 'integer durations are milliseconds');
  assert.equal(web.maxConnections, 500);
  assert.equal(web.allDown, 'refuse');
  assert.deepEqual(web.health, {
    kind: 'http',
    intervalMs: 1000,
    timeoutMs: 2000,
    fall: 4,
    rise: 3,
    path: '/healthz',
  });
  assert.deepEqual(web.pool, { minIdle: 3, maxIdle: 8, idleTtlMs: 60_000 });
  assert.equal(db.listen.host, '::1');
  assert.equal(db.maxRetries, 1, 'a service key beats [defaults]');
  assert.equal(db.connectTimeoutMs, 750);
  assert.equal(db.health.intervalMs, 1000, 'health sub-keys merge from [defaults]');
  assert.equal(db.health.kind, 'tcp');
  assert.deepEqual(db.pool, { minIdle: 2, maxIdle: 10, idleTtlMs: 30_000 });
  assert.equal(db.retryDelayMs, 100);
  assert.ok(Object.isFrozen(c) && Object.isFrozen(web) && Object.isFrozen(web.backends[0]));
});

test('check: a valid file exits 0 and prints services and backends', (t) => {
  const r = runCli(['check', '--config', tempConfig(t, EVERY_KEY)]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /service web: listen 127\.0\.0\.1:8080, balance round-robin/);
  assert.match(r.stdout, /backend 127\.0\.0\.1:9002 weight 2/);
  assert.match(r.stdout, /backend localhost:9003 weight 1 backup/);
});

const base = (svc: string, top = ''): string =>
  `${top}\n[services.web]\nlisten = "127.0.0.1:8080"\n${svc}\n`;

const INVALID: { name: string; text: string; message: RegExp }[] = [
  {
    name: 'TOML syntax',
    text: 'x = 1\n[services.web]\nlisten = \n',
    message: /config\.toml:3:10: Expected/,
  },
  { name: 'redefined key', text: 'a = 1\na = 2\n', message: /config\.toml:2:1: .*redefine/ },
  {
    name: 'malformed backend address',
    text: base('backends = ["127.0.0.1:9001", { address = "9001" }]'),
    message:
      /config\.toml: services\.web\.backends\[1\]\.address: expected "host:port", got "9001"/,
  },
  {
    name: 'unknown key with a suggestion',
    text: base('backends = ["127.0.0.1:9001"]\nconect_timeout = "1s"'),
    message: /services\.web\.conect_timeout: unknown key; did you mean "connect_timeout"\?/,
  },
  {
    name: 'unknown top-level table',
    text: base('backends = ["127.0.0.1:9001"]', '[servces.x]\nlisten="127.0.0.1:1"'),
    message: /config\.toml: servces: unknown key; did you mean "services"\?/,
  },
  {
    name: 'unknown health key',
    text: base('backends = ["127.0.0.1:9001"]\n[services.web.health]\nintervall = "1s"'),
    message: /services\.web\.health\.intervall: unknown key; did you mean "interval"\?/,
  },
  {
    name: 'duplicate listen',
    text: `${base('backends = ["127.0.0.1:9001"]')}\n[services.api]\nlisten = "127.0.0.1:8080"\nbackends = ["127.0.0.1:9002"]\n`,
    message:
      /services\.api\.listen: 127\.0\.0\.1:8080 is already the listen address of services\.web/,
  },
  {
    name: 'no backends',
    text: base('backends = []'),
    message: /services\.web\.backends: a service needs at least one backend/,
  },
  {
    name: 'backends missing',
    text: base(''),
    message: /services\.web\.backends: a service needs at least one backend/,
  },
  {
    name: 'port 0',
    text: base('backends = ["127.0.0.1:0"]'),
    message: /backends\[0\]: port must be 1-65535, got 0/,
  },
  {
    name: 'port 70000',
    text: base('backends = ["127.0.0.1:70000"]'),
    message: /port must be 1-65535, got 70000/,
  },
  {
    name: 'negative duration',
    text: base('backends = ["127.0.0.1:9001"]\nconnect_timeout = -5'),
    message: /services\.web\.connect_timeout: expected a duration of 0 or more, got -5/,
  },
  {
    name: 'unitless duration string',
    text: base('backends = ["127.0.0.1:9001"]\nidle_timeout = "10"'),
    message: /services\.web\.idle_timeout: expected a duration with a unit .* got "10"/,
  },
  {
    name: 'nonsense duration',
    text: base('backends = ["127.0.0.1:9001"]\nretry_delay = "soon"'),
    message: /services\.web\.retry_delay: expected a duration with a unit/,
  },
  {
    name: 'weight below 1',
    text: base('backends = [{ address = "127.0.0.1:9001", weight = 0 }]'),
    message: /services\.web\.backends\[0\]\.weight: must be 1-1000000, got 0/,
  },
  {
    name: 'unknown strategy with a suggestion',
    text: base('backends = ["127.0.0.1:9001"]\nbalance = "round_robin"'),
    message:
      /services\.web\.balance: expected one of .*round-robin.*; did you mean "round-robin"\?/,
  },
  {
    name: 'IPv6 without brackets',
    text: base('backends = ["::1:9001"]'),
    message: /an IPv6 address needs brackets/,
  },
  {
    name: 'wrong type',
    text: base('backends = ["127.0.0.1:9001"]\nmax_retries = "3"'),
    message: /services\.web\.max_retries: expected a whole number, got "3"/,
  },
  {
    name: 'negative max_rate',
    text: base('backends = [{ address = "127.0.0.1:9001", max_rate = -1 }]'),
    message: /services\.web\.backends\[0\]\.max_rate: must be 0 or more, got -1/,
  },
  {
    name: 'unknown backend key',
    text: base('backends = [{ address = "127.0.0.1:9001", max_conections = 5 }]'),
    message: /backends\[0\]\.max_conections: unknown key; did you mean "max_connections"\?/,
  },
  {
    name: 'no services',
    text: '[log]\nlevel = "info"\n',
    message: /services: missing; define at least one/,
  },
  {
    name: 'bad log level',
    text: `${base('backends = ["127.0.0.1:9001"]', '[log]\nlevel = "verbose"')}`,
    message: /log\.level: expected one of trace \| debug/,
  },
];

for (const c of INVALID) {
  test(`check rejects: ${c.name} (exit 2, message names the place)`, (t) => {
    const r = runCli(['check', '--config', tempConfig(t, c.text)]);
    assert.equal(r.status, 2, `stdout: ${r.stdout} stderr: ${r.stderr}`);
    assert.match(r.stderr, c.message);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  });
}

test('every problem in a file is reported at once', () => {
  assert.throws(
    () =>
      parseConfig(
        { services: { web: { listen: 'nope', backends: ['127.0.0.1:0'], retry_delay: 'x' } } },
        { source: 'f.toml' },
      ),
    (err: Error & { code?: string; problems?: string[] }) => {
      assert.equal(err.code, 'LB_ERR_CONFIG');
      assert.equal(err.problems?.length, 3);
      return true;
    },
  );
});

test('run and check: a missing file is a config error, exit 2', () => {
  const r = runCli(['run', '--config', '/nonexistent/blitz.toml']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /\/nonexistent\/blitz\.toml: cannot read config: no such file/);
});

test('usage errors exit 2; --version exits 0', () => {
  assert.equal(runCli(['run']).status, 2);
  assert.equal(runCli(['frobnicate']).status, 2);
  assert.equal(runCli(['run', '--config', 'x', '--log-level', 'loud']).status, 2);
  const v = runCli(['--version']);
  assert.equal(v.status, 0);
  assert.match(v.stdout, /^\d+\.\d+\.\d+/);
});

test('[process] workers: 1 by default, "auto" is the core count, anything else a clear error', () => {
  const svc = '[services.web]\nlisten = "127.0.0.1:8080"\nbackends = ["127.0.0.1:9001"]\n';
  const parse = (proc: string) =>
    parseConfig(parseToml(`${proc}\n${svc}`, 'c.toml'), { source: 'c.toml' });
  assert.equal(parse('').process.workers, 1);
  assert.equal(parse('[process]\nworkers = "auto"').process.workers, availableParallelism());
  assert.throws(() => parse('[process]\nworkers = 0'), /process\.workers: must be 1-256, got 0/);
  assert.throws(
    () => parse('[process]\nworkers = 2.5'),
    /process\.workers: expected a whole number/,
  );
  assert.throws(
    () => parse('[process]\nworkers = "many"'),
    /process\.workers: expected a whole number or "auto", got "many"/,
  );
  assert.throws(() => parse('[process]\nworker = 2'), /did you mean "workers"/);
});
