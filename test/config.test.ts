import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { loadConfig, parseToml } from '../src/config/load.js';
import { parseConfig } from '../src/config/schema.js';
import { CLI, runCli, tempConfig } from './helpers/cli.js';
import { startLb, svc } from './helpers/servers.js';

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
    tls: false,
    port: null,
    address: null,
    steps: [],
    role: null,
    agent: null,
    onDown: 'none',
    onUpPrimary: 'none',
    login: null,
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
    message: /config\.toml:3:10: listen has no value/,
  },
  { name: 'redefined key', text: 'a = 1\na = 2\n', message: /config\.toml:2:1: a is set twice/ },
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
    message: /services\.web\.connect_timeout: must not be negative, got -5/,
  },
  {
    name: 'unitless duration string',
    text: base('backends = ["127.0.0.1:9001"]\nidle_timeout = "10"'),
    message: /services\.web\.idle_timeout: expected a duration with a unit .* got "10"/,
  },
  {
    name: 'negative duration string',
    text: base('backends = ["127.0.0.1:9001"]\nconnect_timeout = "-1s"'),
    message: /services\.web\.connect_timeout: must not be negative, got "-1s"/,
  },
  {
    name: 'upper-case duration unit',
    text: base('backends = ["127.0.0.1:9001"]\n[services.web.health]\ninterval = "5S"'),
    message:
      /services\.web\.health\.interval: units are lower case \(ms, s, m, h\): write "5s", got "5S"/,
  },
  {
    name: 'nonsense duration',
    text: base('backends = ["127.0.0.1:9001"]\nretry_delay = "soon"'),
    message: /services\.web\.retry_delay: expected a duration with a unit/,
  },
  {
    name: 'weight below 0 (0 is a soft stop)',
    text: base('backends = [{ address = "127.0.0.1:9001", weight = -1 }]'),
    message: /services\.web\.backends\[0\]\.weight: must be 0-1000000, got -1/,
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
    message: /services\.web\.backends\[0\]\.max_rate: must be 0-1000000, got -1/,
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

// Issue 13 item 8: every duration and count has an upper bound, and the message names it.

const svcWith = (keys: string, top = ''): string =>
  `${top}\n[services.web]\nlisten = "127.0.0.1:8080"\nbackends = ["127.0.0.1:9001"]\n${keys}\n`;
const parseText = (text: string) => parseConfig(parseToml(text, 'c.toml'), { source: 'c.toml' });

const OUT_OF_RANGE: [string, RegExp][] = [
  [
    svcWith('max_lifetime = "720h"'),
    /c\.toml: services\.web\.max_lifetime: must be 0ms-24d \(2147483647ms\), got "720h"/,
  ],
  [
    svcWith('', '[process]\nshutdown_timeout = "720h"'),
    /process\.shutdown_timeout: must be 0ms-24d \(2147483647ms\), got "720h"/,
  ],
  [svcWith('idle_timeout = 2147483648'), /idle_timeout: must be 0ms-24d .*got 2147483648/],
  [svcWith(`idle_timeout = "${'9'.repeat(400)}ms"`), /idle_timeout: must be 0ms-24d/],
  [svcWith('connect_timeout = "10m"'), /connect_timeout: must be 1ms-5m, got "10m"/],
  [svcWith('retry_delay = "1m"'), /retry_delay: must be 0ms-30s, got "1m"/],
  [svcWith('queue_timeout = "9999h"'), /queue_timeout: must be 1ms-24d/],
  [svcWith('[services.web.health]\ntimeout = "1h"'), /health\.timeout: must be 1ms-5m, got "1h"/],
  [
    svcWith('[services.web.health]\ninterval = "720h"'),
    /health\.interval: must be 1ms-1h, got "720h"/,
  ],
  [
    svcWith('[services.web.health]\nfall = 1000001'),
    /health\.fall: must be 1-1000000, got 1000001/,
  ],
  [svcWith('[services.web.pool]\nidle_ttl = "720h"'), /pool\.idle_ttl: must be 1ms-24d/],
  [svcWith('[services.web.pool]\nmax_idle = 5000'), /pool\.max_idle: must be 0-1000, got 5000/],
  [svcWith('max_connections = 10000000'), /max_connections: must be 1-1000000, got 10000000/],
  [svcWith('queue_size = 10000000'), /queue_size: must be 0-1000000/],
  [svcWith('max_connections_per_source = 10000000'), /per_source: must be 0-1000000/],
  [svcWith('max_rate_per_source = 10000000'), /max_rate_per_source: must be 0-1000000/],
  [svcWith('max_connections = inf'), /max_connections: expected a whole number, got Infinity/],
  [svcWith('idle_timeout = nan'), /idle_timeout: expected whole milliseconds, got NaN/],
  [
    `[services.web]\nlisten = "127.0.0.1:8080"\nbackends = [{ address = "127.0.0.1:9001", max_connections = 10000000, max_rate = 10000000, slow_start = "720h" }]\n`,
    /backends\[0\]\.max_connections: must be 0-1000000.*\n.*backends\[0\]\.max_rate: must be 0-1000000.*\n.*backends\[0\]\.slow_start: must be 0ms-24d/,
  ],
];

test('limits: a duration or count out of range is rejected, naming the allowed range', () => {
  for (const [text, message] of OUT_OF_RANGE) {
    assert.throws(
      () => parseText(text),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'LB_ERR_CONFIG');
        assert.match(err.message, message);
        return true;
      },
      `not rejected: ${text.trim().split('\n').at(-1)}`,
    );
  }
});

test('limits: the bounds themselves are accepted', () => {
  const c = parseText(
    svcWith(
      'max_lifetime = 2147483647\nidle_timeout = "24h"\nconnect_timeout = "5m"\nretry_delay = "30s"\nmax_connections = 1000000\nqueue_size = 1000000\n[services.web.health]\ninterval = "1h"\ntimeout = "5m"\nfall = 100\n[services.web.pool]\nmax_idle = 1000',
      '[process]\nshutdown_timeout = "596h"',
    ),
  );
  const [web] = c.services;
  assert.deepEqual(
    [web?.maxLifetimeMs, web?.idleTimeoutMs, web?.connectTimeoutMs, web?.retryDelayMs],
    [2_147_483_647, 86_400_000, 300_000, 30_000],
  );
  assert.deepEqual([web?.health.intervalMs, web?.health.timeoutMs], [3_600_000, 300_000]);
  assert.equal(c.process.shutdownTimeoutMs, 596 * 3_600_000);
});

test('limits: a float where a whole number is meant (max_retries = 3.0) is an error naming the key', (t) => {
  const rejects = (text: string, message: RegExp): void => {
    assert.throws(
      () => loadConfig(tempConfig(t, text)),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'LB_ERR_CONFIG');
        assert.match(err.message, message);
        return true;
      },
    );
  };
  rejects(
    svcWith('max_retries = 3.0'),
    /config\.toml: services\.web\.max_retries: expected a whole number, got the float 3\.0; write 3/,
  );
  rejects(
    svcWith('', '[defaults]\nmax_connections = 1e3'),
    /defaults\.max_connections: expected a whole number, got the float 1000\.0/,
  );
  rejects(
    `[services.web]\nlisten = "127.0.0.1:8080"\nbackends = [{ address = "127.0.0.1:9001", weight = 2.0 }]\n`,
    /services\.web\.backends\[0\]\.weight: expected a whole number, got the float 2\.0/,
  );
  rejects(svcWith('[services.web.health]\nfall = 3.0'), /health\.fall: expected a whole number/);
  rejects(svcWith('', '[process]\nworkers = 2.0'), /process\.workers: expected a whole number/);
  rejects(
    svcWith('retry_delay = 100.0'),
    /services\.web\.retry_delay: expected whole milliseconds or a string with a unit, got the float 100\.0/,
  );
  // Found together with the schema's own problems, in one pass.
  rejects(
    svcWith('max_retries = 3.0\nbalance = "nope"'),
    /max_retries: expected a whole number.*\n.*services\.web\.balance: expected one of/,
  );
  const ok = loadConfig(tempConfig(t, svcWith('max_retries = 3\nretry_delay = 100')));
  assert.deepEqual([ok.services[0]?.maxRetries, ok.services[0]?.retryDelayMs], [3, 100]);
  assert.equal(
    loadConfig(tempConfig(t, svcWith('retry_delay = "1.5s"'))).services[0]?.retryDelayMs,
    1500,
  );
});

test('check: a float for an integer key exits 2 and names the key', (t) => {
  const r = runCli(['check', '--config', tempConfig(t, svcWith('max_retries = 3.0'))]);
  assert.equal(r.status, 2, r.stdout);
  assert.match(r.stderr, /config\.toml: services\.web\.max_retries: expected a whole number/);
});

// Issue 13 item 9: values that pass a type check but cannot work.

test('addresses are canonical: host names in lower case without a trailing dot, IPv6 compressed', () => {
  const c = parseText(
    `[services.web]\nlisten = "LocalHost.:8080"\nbackends = ["Db1.Internal.:3306", "[::0:1]:9004", "[FE80:0::1]:9005"]\n`,
  );
  const [web] = c.services;
  assert.equal(web?.listen.address, 'localhost:8080');
  assert.deepEqual(
    web?.backends.map((b) => [b.host, b.address]),
    [
      ['db1.internal', 'db1.internal:3306'],
      ['::1', '[::1]:9004'],
      ['fe80::1', '[fe80::1]:9005'],
    ],
  );
});

test('the same backend in other spellings is a duplicate', () => {
  assert.throws(
    () =>
      parseText(
        svcWith('').replace(
          '["127.0.0.1:9001"]',
          '["localhost:9001", "LOCALHOST:9001", "localhost.:9001", "[::1]:1", "[0::1]:1"]',
        ),
      ),
    (err: Error & { problems?: string[] }) => {
      assert.deepEqual(err.problems, [
        'c.toml: services.web.backends[1]: duplicate backend localhost:9001',
        'c.toml: services.web.backends[2]: duplicate backend localhost:9001',
        'c.toml: services.web.backends[4]: duplicate backend [::1]:1',
      ]);
      return true;
    },
  );
});

test('a backend is found by any spelling of its address (admin API, LoadBalancer methods)', async (t) => {
  const lb = await startLb(t, svc(['localhost:9001']));
  assert.equal(lb.disableBackend('web', 'LOCALHOST.:9001').address, 'localhost:9001');
  assert.equal(lb.enableBackend('web', 'Localhost:9001').disabled, false);
});

test('a dotted number that is not an IPv4 address is not taken as a host name', () => {
  for (const host of ['999.999.999.999', '256.1.1.1', '127.1', '01.2.3.4', '10.0.0.1.5', '8080']) {
    assert.throws(
      () => parseText(svcWith('').replace('127.0.0.1:9001', `${host}:9001`)),
      new RegExp(
        `backends\\[0\\]: invalid host "${host.replaceAll('.', '\\.')}" .*not an IPv4 address`,
      ),
      host,
    );
  }
  // Still names: a label may hold digits, only the last one may not be all digits.
  const c = parseText(svcWith('').replace('127.0.0.1:9001', '1.2.3.4a:9001'));
  assert.equal(c.services[0]?.backends[0]?.host, '1.2.3.4a');
});

const twoListens = (a: string, b: string): string =>
  `[services.a]\nlisten = "${a}"\nbackends = ["127.0.0.1:9001"]\n[services.b]\nlisten = "${b}"\nbackends = ["127.0.0.1:9001"]\n`;

test('listen addresses that would clash at bind time are found by check, without DNS', () => {
  const clash: [string, string][] = [
    ['localhost:8080', '127.0.0.1:8080'],
    ['127.0.0.1:8080', 'LOCALHOST.:8080'],
    ['localhost:8080', '[::1]:8080'],
    ['0.0.0.0:8080', '127.0.0.1:8080'],
    ['10.1.2.3:8080', '0.0.0.0:8080'],
    ['0.0.0.0:8080', 'localhost:8080'],
    ['[::]:8080', '127.0.0.1:8080'],
    ['[::]:8080', '0.0.0.0:8080'],
    ['[::1]:8080', '[::]:8080'],
    ['[::]:8080', 'lb.example.com:8080'],
    ['[::0:1]:8080', '[::1]:8080'],
  ];
  for (const [a, b] of clash) {
    assert.throws(
      () => parseText(twoListens(a, b)),
      /c\.toml: services\.b\.listen: .* (?:overlaps .*, the listen address of services\.a: both take port 8080|is already the listen address of services\.a)/,
      `${a} with ${b}`,
    );
  }
  const apart: [string, string][] = [
    ['127.0.0.1:8080', '127.0.0.1:8081'],
    ['127.0.0.1:8080', '127.0.0.2:8080'],
    ['0.0.0.0:8080', '[::1]:8080'],
    ['localhost:8080', '127.0.0.2:8080'],
    ['lb.example.com:8080', 'other.example.com:8080'],
  ];
  for (const [a, b] of apart)
    assert.equal(parseText(twoListens(a, b)).services.length, 2, `${a} with ${b}`);
});

test('the admin listen address may not clash with a service listen address', () => {
  const withAdmin = (admin: string): string => svcWith('', `[admin]\nlisten = "${admin}"`);
  assert.throws(
    () => parseText(withAdmin('127.0.0.1:8080')),
    /c\.toml: admin\.listen: 127\.0\.0\.1:8080 is already the listen address of services\.web/,
  );
  assert.throws(
    () => parseText(withAdmin('localhost:8080')),
    /admin\.listen: localhost:8080 overlaps 127\.0\.0\.1:8080, the listen address of services\.web/,
  );
  assert.equal(parseText(withAdmin('127.0.0.1:9900')).admin?.listen.address, '127.0.0.1:9900');
});

test('an admin token that no client could send is rejected: control, non-ASCII, spaces', () => {
  const withToken = (token: string): string =>
    svcWith('', `[admin]\nlisten = "127.0.0.1:9900"\ntoken = "${token}"`);
  for (const token of [
    'pässwort-geheim',
    'abcdefgh\\u0007',
    'tab\\tinside-it',
    'short',
    'x'.repeat(4097),
  ]) {
    assert.throws(
      () => parseText(withToken(token)),
      /admin\.token: expected 8-4096 printable ASCII characters/,
      token,
    );
  }
  assert.equal(parseText(withToken('s3cr3t-T0ken_~!')).admin?.token, 's3cr3t-T0ken_~!');
});

// Issue 13 item 10: the config file is read with limits.

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'blitz-lb-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** `check` in a child with a deadline: a read that blocks must fail this test, not hang the runner. */
function checkWithDeadline(file: string): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, 'check', '--config', file], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  return { status: r.status, stderr: r.stderr };
}

test('check: a FIFO at the config path is refused at once, not waited on', (t) => {
  const fifo = join(tempDir(t), 'config.toml');
  const mk = spawnSync('mkfifo', [fifo]);
  assert.equal(mk.status, 0, `mkfifo: ${mk.stderr}`);
  const r = checkWithDeadline(fifo);
  assert.equal(r.status, 2, `exit ${r.status} (null: it blocked): ${r.stderr}`);
  assert.match(
    r.stderr,
    /config\.toml: cannot read config: is a FIFO \(named pipe\), not a regular file/,
  );
});

test('check: a symlink to /dev/zero is refused, not read until memory runs out', (t) => {
  const link = join(tempDir(t), 'config.toml');
  symlinkSync('/dev/zero', link);
  const r = checkWithDeadline(link);
  assert.equal(r.status, 2, `exit ${r.status}: ${r.stderr}`);
  assert.match(
    r.stderr,
    /config\.toml: cannot read config: is a character device, not a regular file/,
  );
});

test('a config file over 1 MiB is refused with the limit named; a symlink to a regular file is followed', (t) => {
  const dir = tempDir(t);
  const valid = svcWith('');
  const big = join(dir, 'big.toml');
  writeFileSync(big, `${'# padding\n'.repeat(110_000)}${valid}`);
  assert.throws(
    () => loadConfig(big),
    (err: Error & { code?: string }) => {
      assert.equal(err.code, 'LB_ERR_CONFIG');
      assert.match(
        err.message,
        /big\.toml: cannot read config: is 1100\d+ bytes, over the limit of 1 MiB \(1048576 bytes\)/,
      );
      return true;
    },
  );
  const real = join(dir, 'real.toml');
  writeFileSync(real, `${'#'.repeat(1000)}\n${valid}`);
  const link = join(dir, 'config.toml');
  symlinkSync(real, link);
  assert.equal(loadConfig(link).services[0]?.name, 'web');
  assert.throws(() => loadConfig(dir), /cannot read config: is a directory/);
});

test('health: a login probe (user, password, database) for mysql and postgres only; each mistake names its key', () => {
  const h = (keys: string) => svcWith(`[services.web.health]\n${keys}`);
  const db = parseText(h('kind = "postgres"\nuser = "probe"\npassword = ""\ndatabase = "app"'));
  assert.deepEqual(db.services[0]?.health.login, { user: 'probe', password: '', database: 'app' });
  const my = parseText(h('kind = "mysql"\nuser = "probe"'));
  assert.deepEqual(my.services[0]?.health.login, { user: 'probe', password: null, database: null });
  const bad: [string, RegExp][] = [
    [
      h('kind = "tcp"\nuser = "probe"'),
      /health\.user: applies to kind = "mysql" or "postgres" only \(kind is "tcp"\)/,
    ],
    [h('kind = "mysql"\npassword = "x"'), /health\.password: needs user/],
    [h('kind = "postgres"\nuser = ""'), /health\.user: expected a non-empty string, got ""/],
    [
      h('kind = "postgres"\nuser = "u"\npassword = 5'),
      /health\.password: expected a string, got 5/,
    ],
  ];
  for (const [text, message] of bad)
    assert.throws(
      () => parseText(text),
      (err: Error) => message.test(err.message),
      text,
    );
});
