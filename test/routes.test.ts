import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../src/config/schema.js';
import { ConfigError } from '../src/errors.js';
import { LoadBalancer } from '../src/load-balancer.js';
import { encodeV1 } from '../src/proxy/proxy-protocol.js';
import { startAdmin, value } from './helpers/admin.js';
import { runCli, tempConfig } from './helpers/cli.js';
import { logLines } from './helpers/log-lines.js';
import { addr, bannerServer, exchange, svc, waitFor } from './helpers/servers.js';

type Raw = Record<string, unknown>;
type T = Parameters<typeof bannerServer>[0];

/** Four backends, each answering its own name: a1, a2 (group "a") and b1, b2 (group "b"). */
async function fourBackends(t: T): Promise<{ name: string; address: string }[]> {
  const out = [];
  for (const name of ['a1', 'a2', 'b1', 'b2'])
    out.push({ name, address: addr(await bannerServer(t, name)) });
  return out;
}

function config(backends: { name: string; address: string }[], extra: Raw): Raw {
  return { ...svc(backends, extra), log: { level: 'silent', access: true } };
}

async function start(t: T, extra: Raw) {
  const backends = await fourBackends(t);
  const log = logLines();
  const parse = (x: Raw) =>
    parseConfig(config(backends, x), { source: '<test>', allowEphemeralListen: true });
  const lb = new LoadBalancer(parse(extra), { logger: log.logger });
  await lb.start();
  t.after(() => lb.close(0));
  return { lb, log, port: lb.address('web').port, reload: (x: Raw) => lb.reload(parse(x)) };
}

/** The backends `n` clients from `from` reached (sorted, each once). */
async function reached(port: number, from: string, n: number, header?: Buffer): Promise<string[]> {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) seen.add(await exchange(port, '127.0.0.1', from, header ?? null));
  return [...seen].sort();
}

const BY_SOURCE: Raw = {
  route: [
    { source: ['127.0.0.2/32'], backends: ['b1', 'b2'] },
    { name: 'loopback', source: ['127.0.0.0/8'], backends: ['a1', 'a2'] },
  ],
};

test('routes by source: clients from 127.0.0.2 reach group b only, those from 127.0.0.1 group a only; counted per route and access-logged', async (t) => {
  const { lb, log, port } = await start(t, BY_SOURCE);
  assert.deepEqual(await reached(port, '127.0.0.2', 6), ['b1', 'b2']);
  assert.deepEqual(await reached(port, '127.0.0.1', 6), ['a1', 'a2']);
  const api = await startAdmin(t, lb);
  const m = await api.metrics();
  assert.equal(value(m, 'blitz_lb_route_sessions_total{service="web",route="route[0]"}'), 6);
  assert.equal(value(m, 'blitz_lb_route_sessions_total{service="web",route="loopback"}'), 6);
  assert.equal(value(m, 'blitz_lb_route_sessions_total{service="web",route="default"}'), 0);
  await waitFor(() => log.access().length === 12, 3000, 'twelve access lines');
  for (const l of log.access()) {
    const fromB = String(l.client).startsWith('127.0.0.2:');
    assert.equal(l.route, fromB ? 'route[0]' : 'loopback');
    assert.ok((fromB ? ['b1', 'b2'] : ['a1', 'a2']).includes(String(l.backendName)));
  }
});

test('clients no route takes use every backend (the "default" route)', async (t) => {
  const { lb, port } = await start(t, {
    route: [{ source: ['127.0.0.2/32'], backends: ['b1'] }],
  });
  assert.deepEqual(await reached(port, '127.0.0.1', 8), ['a1', 'a2', 'b1', 'b2']);
  assert.deepEqual(await reached(port, '127.0.0.2', 3), ['b1']);
  const api = await startAdmin(t, lb);
  const m = await api.metrics();
  assert.equal(value(m, 'blitz_lb_route_sessions_total{service="web",route="default"}'), 8);
});

test('routes by the address a trusted PROXY header gives, not the socket’s', async (t) => {
  const { port } = await start(t, {
    accept_proxy: true,
    trusted_proxies: ['127.0.0.1/32'],
    route: [
      { source: ['10.20.0.0/16'], backends: ['b1', 'b2'] },
      { source: ['127.0.0.1/32'], backends: ['a1'] },
    ],
  });
  const header = (src: string) =>
    encodeV1({ family: 'TCP4', srcAddr: src, srcPort: 5000, dstAddr: '10.0.0.5', dstPort: 5432 });
  assert.deepEqual(await reached(port, '127.0.0.1', 4, header('10.20.3.4')), ['b1', 'b2']);
  assert.deepEqual(await reached(port, '127.0.0.1', 4, header('192.168.1.1')), [
    'a1',
    'a2',
    'b1',
    'b2',
  ]);
});

test('a route whose group has no backend in rotation refuses its clients at once: they never spill onto another group', async (t) => {
  const { lb, port } = await start(t, BY_SOURCE);
  lb.disableBackend('web', 'b1');
  lb.disableBackend('web', 'b2');
  assert.equal(await exchange(port, '127.0.0.1', '127.0.0.2'), '');
  assert.equal(lb.service('web').counters.refusedNoBackend, 1);
  lb.enableBackend('web', 'b1');
  assert.deepEqual(await reached(port, '127.0.0.2', 3), ['b1']);
});

test('a reload that changes routes takes effect for new clients; the route counters carry over', async (t) => {
  const { lb, port, reload } = await start(t, BY_SOURCE);
  assert.deepEqual(await reached(port, '127.0.0.2', 2), ['b1', 'b2']);
  await reload({
    route: [
      { source: ['127.0.0.2/32'], backends: ['a2'] },
      { name: 'loopback', source: ['127.0.0.0/8'], backends: ['b2'] },
    ],
  });
  assert.deepEqual(await reached(port, '127.0.0.2', 3), ['a2']);
  assert.deepEqual(await reached(port, '127.0.0.1', 3), ['b2']);
  const api = await startAdmin(t, lb);
  const m = await api.metrics();
  assert.equal(value(m, 'blitz_lb_route_sessions_total{service="web",route="route[0]"}'), 5);
  await reload({});
  assert.deepEqual(await reached(port, '127.0.0.2', 8), ['a1', 'a2', 'b1', 'b2']);
});

function problems(extra: Raw): string[] {
  const backends = [
    { name: 'a1', address: '127.0.0.1:9001' },
    { name: 'b1', address: '127.0.0.1:9002' },
  ];
  try {
    parseConfig(config(backends, extra), { source: 'c.toml', allowEphemeralListen: true });
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return [...err.problems];
  }
  assert.fail('expected the config to be refused');
}

test('check: a route that can never match (shadowed by an earlier one), unknown backends, an empty group, bad CIDRs, each with its path', () => {
  assert.deepEqual(
    problems({
      route: [
        { source: ['10.0.0.0/8'], backends: ['a1'] },
        { source: ['10.20.0.0/16', '10.1.2.3'], backends: ['b1'] },
        { source: ['10.0.0.0/33'], backends: ['nope'] },
        { backends: [] },
      ],
    }),
    [
      "c.toml: services.web.route[1]: can never match: every client it takes is taken by services.web.route[0] first (its conditions are a subset of that route's); reorder or narrow them",
      'c.toml: services.web.route[2].source[0]: expected a CIDR such as "10.0.0.0/8" or "::1/128", got "10.0.0.0/33"',
      'c.toml: services.web.route[2].backends[0]: no backend of services.web is named "nope" (names: a1, b1)',
      'c.toml: services.web.route[3].backends: empty: a route needs at least one backend, the group its clients go to',
    ],
  );
  // A rule with no condition takes everyone: anything after it is shadowed.
  assert.match(
    problems({ route: [{ backends: ['a1'] }, { port: 1, backends: ['b1'] }] }).join('\n'),
    /route\[1\]: can never match: every client it takes is taken by services\.web\.route\[0\]/,
  );
  // sni needs a service that reads a ClientHello.
  assert.match(
    problems({ route: [{ sni: ['a.example.com'], backends: ['a1'] }] }).join('\n'),
    /route\[0\]\.sni: this service reads no ClientHello/,
  );
});

test('routes by the local port the client connected to', async (t) => {
  const { port, reload } = await start(t, {});
  await reload({ route: [{ port: port, backends: ['b2'] }] });
  assert.deepEqual(await reached(port, '127.0.0.1', 3), ['b2']);
  // Another port: the rule no longer holds, every backend serves.
  await reload({ route: [{ port: port === 65535 ? 1 : port + 1, backends: ['b2'] }] });
  assert.deepEqual(await reached(port, '127.0.0.1', 8), ['a1', 'a2', 'b1', 'b2']);
});

const PG = `[services.pg]
listen = "127.0.0.1:15432"
backends = [{ address = "127.0.0.1:5433", name = "pg-a" }, { address = "127.0.0.1:5434", name = "pg-b" }]

[[services.pg.route]]
name = "reporting"
source = ["10.20.0.0/16"]
backends = ["pg-b"]
`;

test('blitz-lb check lists names and routes, and exits 2 on a shadowed route with its path', (t) => {
  const ok = runCli(['check', '--config', tempConfig(t, PG)]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /backend pg-a 127\.0\.0\.1:5433 weight 1/);
  assert.match(ok.stdout, /route reporting: source 10\.20\.0\.0\/16 -> pg-b/);
  assert.match(ok.stdout, /route default \(no route matched\): every backend/);
  const shadowed = `${PG}
[[services.pg.route]]
source = ["10.20.30.0/24"]
backends = ["pg-a"]
`;
  const bad = runCli(['check', '--config', tempConfig(t, shadowed)]);
  assert.equal(bad.status, 2);
  assert.match(
    bad.stderr,
    /services\.pg\.route\[1\]: can never match: every client it takes is taken by services\.pg\.route\[0\] first/,
  );
});
