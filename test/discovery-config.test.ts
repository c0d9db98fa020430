import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../src/config/load.js';
import { parseConfig } from '../src/config/schema.js';
import { ConfigError } from '../src/errors.js';
import { runCli, tempConfig } from './helpers/cli.js';

const svcWith = (discovery: unknown, extra: Record<string, unknown> = {}) => ({
  services: { web: { listen: '127.0.0.1:8080', discovery, ...extra } },
});

/** The problems parseConfig reports for `raw`, or [] when it is valid. */
function problems(raw: unknown): string[] {
  try {
    parseConfig(raw, { source: 'c.toml' });
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return [...err.problems];
  }
}

test('check: discovery keys are validated, each with the place and what was expected', () => {
  const cases: [unknown, RegExp][] = [
    [{}, /discovery\.kind: missing; one of dns \| srv \| file \| http/],
    [{ kind: 'consul' }, /discovery\.kind: expected one of dns \| srv \| file \| http/],
    [{ kind: 'dns', port: 80 }, /discovery\.name: missing; kind = "dns" needs name/],
    [{ kind: 'dns', name: 'db.internal' }, /discovery\.port: missing/],
    [{ kind: 'dns', name: 'db internal', port: 80 }, /discovery\.name: expected a DNS name/],
    [{ kind: 'dns', name: '10.0.0.1', port: 80 }, /discovery\.name: expected a DNS name/],
    [{ kind: 'dns', name: 'db.internal', port: 70000 }, /discovery\.port: must be 1-65535/],
    [
      { kind: 'dns', name: 'db.internal', port: 80, resolver: 'ns.internal:53' },
      /discovery\.resolver: expected "ip:port" of a DNS server/,
    ],
    [{ kind: 'srv', name: 'pg.example.internal' }, /shaped _service\._proto\.name/],
    [{ kind: 'srv', name: '_pg.example.internal' }, /shaped _service\._proto\.name/],
    [{ kind: 'srv', name: '_pg._tcp' }, /shaped _service\._proto\.name/],
    [
      { kind: 'http', url: 'ftp://registry/x' },
      /discovery\.url: expected an http:\/\/ or https:\/\/ URL/,
    ],
    [{ kind: 'http', url: 'not a url' }, /discovery\.url: expected an http/],
    [{ kind: 'http', url: 'http://u:p@registry/x' }, /discovery\.url: credentials in the URL/],
    [
      { kind: 'http', url: 'http://r/x', wait: '30s' },
      /discovery\.wait: only with shape = "consul"/,
    ],
    [
      { kind: 'http', url: 'http://r/x', shape: 'consul', wait: '11m' },
      /discovery\.wait: must be 1s-10m/,
    ],
    [{ kind: 'http', url: 'http://r/x', interval: '10ms' }, /discovery\.interval: must be 50ms-1h/],
    [{ kind: 'http', url: 'http://r/x', interval: '2h' }, /discovery\.interval: must be 50ms-1h/],
    [
      { kind: 'dns', name: 'db.internal', port: 80, min_ttl: '10s', max_ttl: '5s' },
      /discovery\.min_ttl: must be at most max_ttl/,
    ],
    [{ kind: 'file', path: '/nonexistent/backends.json' }, /discovery\.path: .*no such file/],
    [{ kind: 'file', path: '/etc/passwd' }, /discovery\.path: expected a \.json or \.toml file/],
    [{ kind: 'file' }, /discovery\.path: missing/],
    [
      { kind: 'dns', name: 'db.internal', port: 80, url: 'http://x/' },
      /discovery\.url: only for kind = "http"/,
    ],
    [
      { kind: 'file', path: 'x.json', name: 'a.b' },
      /discovery\.name: only for kind = "dns" or "srv"/,
    ],
    [{ kind: 'dns', name: 'db.internal', port: 80, intervall: '1s' }, /did you mean "interval"/],
    [
      { kind: 'dns', name: 'db.internal', port: 80, backend: { weight: -1 } },
      /discovery\.backend\.weight: must be 0-1000000/,
    ],
    [
      { kind: 'dns', name: 'db.internal', port: 80, backend: { address: 'x:1' } },
      /discovery\.backend\.address: unknown key/,
    ],
  ];
  for (const [discovery, want] of cases) {
    const got = problems(svcWith(discovery));
    assert.ok(
      got.some((p) => want.test(p)),
      `${JSON.stringify(discovery)}: wanted ${want}, got ${JSON.stringify(got)}`,
    );
    assert.ok(
      got.every((p) => p.startsWith('c.toml: services.web.')),
      JSON.stringify(got),
    );
  }
});

test('check: with discovery, backends may be empty; without it, a service still needs one', () => {
  const ok = parseConfig(
    svcWith({ kind: 'srv', name: '_pg._tcp.example.internal.', resolver: '[::1]:5353' }),
  );
  const d = ok.services[0]?.discovery;
  assert.equal(d?.name, '_pg._tcp.example.internal', 'the trailing dot goes');
  assert.equal(d?.resolver, '[::1]:5353');
  assert.equal(d?.intervalMs, 30_000);
  assert.deepEqual(ok.services[0]?.backends, []);
  assert.match(
    problems({ services: { web: { listen: '127.0.0.1:8080' } } }).join('\n'),
    /at least one backend/,
  );
});

test('check: a relative file path is taken from the config file’s directory, and `check` prints discovery', (t) => {
  const cfgFile = tempConfig(
    t,
    `[services.web]
listen = "127.0.0.1:8080"
backends = ["127.0.0.1:9001"]
[services.web.discovery]
kind = "file"
path = "lists/web.json"
`,
  );
  assert.throws(
    () => loadConfig(cfgFile),
    /services\.web\.discovery\.path: .*lists\/web\.json: no such file/,
  );
  const list = join(dirname(cfgFile), 'lists', 'web.json');
  mkdirSync(dirname(list));
  writeFileSync(list, '[]');
  assert.equal(loadConfig(cfgFile).services[0]?.discovery?.path, list);
  const r = runCli(['check', '--config', cfgFile]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`discovery file ${list} \\(watched; re-checked every 5s\\)`));

  const bad = tempConfig(
    t,
    `[services.web]
listen = "127.0.0.1:8080"
[services.web.discovery]
kind = "srv"
name = "postgres.example.internal"
`,
  );
  const r2 = runCli(['check', '--config', bad]);
  assert.equal(r2.status, 2);
  assert.match(
    r2.stderr,
    /services\.web\.discovery\.name: expected an SRV name shaped _service\._proto\.name/,
  );
});
