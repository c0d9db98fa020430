import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../src/config/schema.js';
import { parseEntries } from '../src/discovery/entries.js';
import { backendsOf, parseSlice } from '../src/discovery/kubernetes-slices.js';
import { ConfigError } from '../src/errors.js';
import { LoadBalancer } from '../src/load-balancer.js';
import { startAdmin, value } from './helpers/admin.js';
import { logLines } from './helpers/log-lines.js';
import { addr, echoServer, exchange, svc, waitFor } from './helpers/servers.js';

function problems(raw: Record<string, unknown>): string[] {
  try {
    parseConfig(raw, { source: 'c.toml', allowEphemeralListen: true });
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return [...err.problems];
  }
  assert.fail('expected the config to be refused');
}

test('backend names: unique in the service, never another backend’s address, and well formed, each error with its path', () => {
  const p = problems(
    svc([
      { address: '127.0.0.1:9001', name: 'pg-a' },
      { address: '127.0.0.1:9002', name: 'pg-a' },
      { address: '127.0.0.1:9003', name: '127.0.0.1:9001' },
      { address: '127.0.0.1:9004', name: 'has space' },
    ]),
  );
  assert.deepEqual(p, [
    'c.toml: services.web.backends[3].name: expected a name of letters, digits and . _ - : @ [ ] (up to 253, starting with a letter or digit), got "has space"',
    'c.toml: services.web.backends[1].name: backend name "pg-a" is also the name of services.web.backends[0]',
    'c.toml: services.web.backends[2].name: backend name "127.0.0.1:9001" is the address of services.web.backends[0]',
  ]);
});

async function named(t: Parameters<typeof echoServer>[0]) {
  const a = await echoServer(t);
  const b = await echoServer(t);
  const log = logLines();
  const raw = (names: [string | null, string | null]) => ({
    ...svc([
      names[0] === null ? addr(a) : { address: addr(a), name: names[0] },
      names[1] === null ? addr(b) : { address: addr(b), name: names[1] },
    ]),
    log: { level: 'silent', access: true },
  });
  const cfg = (n: [string | null, string | null]) =>
    parseConfig(raw(n), { source: '<test>', allowEphemeralListen: true });
  const lb = new LoadBalancer(cfg(['pg-a', null]), { logger: log.logger });
  await lb.start();
  t.after(() => lb.close(0));
  return { lb, log, a, b, reload: (n: [string | null, string | null]) => lb.reload(cfg(n)) };
}

test('a backend’s name labels its metrics (an unnamed one keeps its address), backend_info maps it to the address, and the access log names it', async (t) => {
  const { lb, log, a, b } = await named(t);
  const port = lb.address('web').port;
  for (let i = 0; i < 4; i++) assert.equal(await exchange(port, '127.0.0.1', '127.0.0.1'), 'hi');
  const api = await startAdmin(t, lb);
  const m = await api.metrics();
  assert.equal(value(m, 'blitz_lb_backend_up{service="web",backend="pg-a"}'), 1);
  assert.equal(value(m, `blitz_lb_backend_up{service="web",backend="${addr(b)}"}`), 1);
  assert.equal(value(m, `blitz_lb_backend_up{service="web",backend="${addr(a)}"}`), undefined);
  assert.equal(
    value(m, `blitz_lb_backend_info{service="web",backend="pg-a",address="${addr(a)}"}`),
    1,
  );
  assert.equal(value(m, 'blitz_lb_sessions_total{service="web",backend="pg-a"}'), 2);
  await waitFor(() => log.access().length === 4, 3000, 'four access lines');
  const lines = log.access();
  const toA = lines.filter((l) => l.backend === addr(a));
  assert.equal(toA.length, 2);
  for (const l of toA) assert.equal(l.backendName, 'pg-a');
  for (const l of lines.filter((x) => x.backend === addr(b)))
    assert.equal(l.backendName, undefined, 'an unnamed backend goes by its address alone');
});

test('the admin API takes a backend by name or by address, shows both, and refuses a taken name', async (t) => {
  const { lb, a } = await named(t);
  const api = await startAdmin(t, lb);
  let r = await api.call('POST', '/api/services/web/backends/pg-a/drain');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json().backend.name, 'pg-a');
  assert.equal(r.json().backend.address, addr(a));
  assert.equal(r.json().backend.state, 'draining');
  r = await api.call('POST', `/api/services/web/backends/${addr(a)}/enable`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json().backend.state, 'up');
  r = await api.call('PUT', '/api/services/web/backends/pg-a/weight', '{"weight": 5}');
  assert.equal(lb.service('web').backends.get(addr(a))?.weight, 5);
  r = await api.call('POST', '/api/services/web/backends/127.0.0.1:1', '{"name": "pg-a"}');
  assert.equal(r.status, 409, r.text);
  assert.match(r.json().error, /backend name "pg-a" is taken by 127\.0\.0\.1:\d+/);
  r = await api.call('POST', '/api/services/web/backends/127.0.0.1:1', '{"name": "pg-c"}');
  assert.equal(r.status, 201, r.text);
  assert.equal(r.json().backend.name, 'pg-c');
  r = await api.call('DELETE', '/api/services/web/backends/pg-c');
  assert.equal(r.status, 200, r.text);
  assert.equal(lb.service('web').backends.get('127.0.0.1:1'), undefined, 'removed by its name');
  r = await api.call('GET', '/api/services');
  const names = r.json().services[0].backends.map((x: { name: string }) => x.name);
  assert.ok(names.includes('pg-a'));
});

test('a reload that renames a backend at the same address keeps it: its open sessions and counters stay', async (t) => {
  const { lb, reload, a } = await named(t);
  const port = lb.address('web').port;
  for (let i = 0; i < 4; i++) await exchange(port, '127.0.0.1', '127.0.0.1');
  const before = lb.service('web').backends.get(addr(a));
  assert.equal(before?.sessionsTotal, 2);
  await reload(['pg-main', 'pg-b']);
  const after = lb.service('web').backends.get(addr(a));
  assert.equal(after, before, 'the same backend, renamed in place');
  assert.equal(after?.name, 'pg-main');
  assert.equal(after?.sessionsTotal, 2);
  await reload([null, 'pg-b']);
  assert.equal(lb.service('web').backends.get(addr(a))?.name, addr(a), 'no name: its address');
});

test('discovery names backends: a registry entry’s name, a Kubernetes endpoint’s pod', () => {
  const template = { weight: 1, backup: false, maxConnections: 0, maxRate: 0, slowStartMs: 0 };
  const got = parseEntries(
    [{ address: '10.0.0.1:80', name: 'app-1' }, '10.0.0.2:80'],
    template,
    'registry',
  );
  assert.deepEqual(
    got.map((b) => b.name),
    ['app-1', undefined],
  );
  const slice = parseSlice({
    metadata: { name: 's1' },
    addressType: 'IPv4',
    ports: [{ name: 'http', port: 8080 }],
    endpoints: [
      { addresses: ['10.1.0.1'], targetRef: { kind: 'Pod', name: 'web-7d9f-abcde' } },
      { addresses: ['10.1.0.2'], hostname: 'web-1' },
      { addresses: ['10.1.0.3'] },
    ],
  });
  assert.deepEqual(
    backendsOf([slice], null, template).map((b) => b.name),
    ['web-7d9f-abcde', 'web-1', undefined],
  );
});
