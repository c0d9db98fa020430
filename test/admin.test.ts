import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { AdminServer } from '../src/admin/server.js';
import { parseConfig } from '../src/config/schema.js';
import { LbError } from '../src/errors.js';
import { LoadBalancer } from '../src/load-balancer.js';
import { createLogger } from '../src/logger.js';
import {
  addr,
  echoServer,
  httpGet,
  httpServer,
  openClient,
  readAll,
  startLb,
  svc,
  waitFor,
} from './helpers/servers.js';

async function startAdmin(
  t: Parameters<typeof startLb>[0],
  lb: LoadBalancer,
  extra: {
    token?: string;
    reload?: () =>
      | Promise<never>
      | Promise<{ added: string[]; removed: string[]; changed: string[] }>;
  } = {},
) {
  const admin = new AdminServer(lb, {
    listen: { host: '127.0.0.1', port: 0, address: '127.0.0.1:0' },
    token: extra.token ?? null,
    reload: extra.reload ?? null,
    log: createLogger('silent'),
  });
  await admin.start();
  t.after(() => admin.close());
  const base = `http://127.0.0.1:${admin.address().port}`;
  return {
    base,
    call: async (
      method: string,
      path: string,
      body?: string,
      headers: Record<string, string> = {},
    ) => {
      const r = await fetch(base + path, { method, body, headers });
      const text = await r.text();
      return {
        status: r.status,
        type: r.headers.get('content-type') ?? '',
        text,
        json: () => JSON.parse(text),
      };
    },
  };
}

test('admin: /metrics has the blitz_lb_ metrics with service and backend labels, and process metrics', async (t) => {
  const a = await httpServer(t, 'a');
  const lb = await startLb(t, svc([addr(a)], { pool: { min_idle: 1 } }));
  const { call } = await startAdmin(t, lb);
  await waitFor(() => lb.service('web').pool.idleCount === 1, 3000, 'pool');
  assert.equal(await httpGet(lb.address('web').port), 'a');
  await waitFor(() => lb.service('web').activeSessions === 0, 3000, 'session end');
  const r = await call('GET', '/metrics');
  assert.equal(r.status, 200);
  assert.match(r.type, /text\/plain/);
  const b = `service="web",backend="${addr(a)}"`;
  for (const line of [
    `blitz_lb_sessions_total{${b}} 1`,
    'blitz_lb_active_sessions{service="web"} 0',
    `blitz_lb_backend_up{${b}} 1`,
    'blitz_lb_pool_hits_total{service="web"} 1',
    'blitz_lb_pool_misses_total{service="web"} 0',
    'blitz_lb_refused_total{service="web",reason="no-backend"} 0',
    `blitz_lb_dial_failures_total{${b}} 0`,
    `blitz_lb_backend_aborts_total{${b}} 0`,
    'blitz_lb_retries_total{service="web"} 0',
    'blitz_lb_connect_seconds_count{service="web",pool="hit"} 1',
    'blitz_lb_session_seconds_count{service="web"} 1',
    '# TYPE blitz_lb_connect_seconds histogram',
    'blitz_lb_connect_seconds_bucket{service="web",pool="hit",le="+Inf"} 1',
  ]) {
    assert.ok(r.text.includes(line), `missing: ${line}`);
  }
  assert.match(
    r.text,
    new RegExp(
      `blitz_lb_bytes_total\\{${b.replace(/[.[\]]/g, '\\$&')},direction="from-backend"\\} [1-9]`,
    ),
  );
  assert.match(r.text, new RegExp(`blitz_lb_pool_idle\\{${b.replace(/[.[\]]/g, '\\$&')}\\} [0-9]`));
  assert.match(r.text, /blitz_lb_process_cpu_user_seconds_total \d/);
});

test('admin: /api/services, backend write calls, errors as JSON with the right status', async (t) => {
  const a = await httpServer(t, 'a');
  const b = await httpServer(t, 'b');
  const lb = await startLb(t, svc([addr(a), addr(b)]));
  const { call } = await startAdmin(t, lb);
  const list = (await call('GET', '/api/services')).json();
  assert.equal(list.services[0].name, 'web');
  assert.equal(list.services[0].balance, 'round-robin');
  assert.deepEqual(
    list.services[0].backends.map((x: { address: string; state: string; weight: number }) => [
      x.address,
      x.state,
      x.weight,
    ]),
    [
      [addr(a), 'up', 1],
      [addr(b), 'up', 1],
    ],
  );

  const drained = await call('POST', `/api/services/web/backends/${addr(a)}/drain`);
  assert.equal(drained.status, 200);
  assert.deepEqual(
    [drained.json().backend.state, drained.json().backend.reason],
    ['draining', 'drained by operator'],
  );
  for (let i = 0; i < 3; i++) assert.equal(await httpGet(lb.address('web').port), 'b');
  const disabled = await call(
    'POST',
    `/api/services/web/backends/${encodeURIComponent(addr(a))}/disable`,
  );
  assert.equal(disabled.json().backend.state, 'disabled');
  const enabled = await call('POST', `/api/services/web/backends/${addr(a)}/enable`);
  assert.equal(enabled.json().backend.state, 'up');
  // Disabled alone (not also drained): still out of rotation.
  await call('POST', `/api/services/web/backends/${addr(a)}/disable`);
  for (let i = 0; i < 3; i++) assert.equal(await httpGet(lb.address('web').port), 'b');
  await call('POST', `/api/services/web/backends/${addr(a)}/enable`);
  const both = new Set<string>();
  for (let i = 0; i < 4; i++) both.add(await httpGet(lb.address('web').port));
  assert.deepEqual([...both].sort(), ['a', 'b']);
  const w = await call('PUT', `/api/services/web/backends/${addr(b)}/weight`, '{"weight": 4}');
  assert.deepEqual([w.status, w.json().backend.weight], [200, 4]);

  assert.equal((await call('POST', '/api/services/nope/backends/1.2.3.4:5/drain')).status, 404);
  const unknown = await call('POST', '/api/services/web/backends/127.0.0.1:1/drain');
  assert.equal(unknown.status, 404);
  assert.match(unknown.json().error, /no backend 127\.0\.0\.1:1/);
  assert.equal(
    (await call('PUT', `/api/services/web/backends/${addr(b)}/weight`, 'heavy')).status,
    400,
  );
  assert.equal(
    (await call('PUT', `/api/services/web/backends/${addr(b)}/weight`, '{"weight": 0}')).status,
    400,
  );
  assert.equal((await call('GET', `/api/services/web/backends/${addr(b)}/drain`)).status, 405);
  assert.equal((await call('GET', '/nope')).status, 404);
});

test('admin: with a token, write calls need the bearer token; reads do not', async (t) => {
  const a = await httpServer(t, 'a');
  const lb = await startLb(t, svc([addr(a)]));
  const { call } = await startAdmin(t, lb, { token: 's3cret-token' });
  assert.equal((await call('GET', '/api/services')).status, 200);
  assert.equal((await call('POST', `/api/services/web/backends/${addr(a)}/drain`)).status, 401);
  const ok = await call('POST', `/api/services/web/backends/${addr(a)}/drain`, undefined, {
    authorization: 'Bearer s3cret-token',
  });
  assert.equal(ok.status, 200);
});

test('admin: /healthz is 200 while every service has a healthy backend, else 503 naming them', async (t) => {
  const a = await httpServer(t, 'a');
  const lb = await startLb(t, svc([addr(a)]));
  const { call } = await startAdmin(t, lb);
  assert.equal((await call('GET', '/healthz')).status, 200);
  const s = lb.service('web');
  s.backends.markDown(s.backends.all[0] as never, 'test');
  const r = await call('GET', '/healthz');
  assert.equal(r.status, 503);
  assert.deepEqual(r.json().failing, ['web']);
});

test('admin: POST /api/reload returns the summary, or 400 with the reason', async (t) => {
  const a = await httpServer(t, 'a');
  const lb = await startLb(t, svc([addr(a)]));
  let valid = true;
  const { call } = await startAdmin(t, lb, {
    reload: async () => {
      if (!valid)
        throw new LbError(
          'LB_ERR_CONFIG',
          'config.toml: services.web.listen: expected "host:port"',
        );
      return { added: [], removed: [], changed: ['web'] };
    },
  });
  const ok = await call('POST', '/api/reload');
  assert.deepEqual([ok.status, ok.json().changed], [200, ['web']]);
  valid = false;
  const bad = await call('POST', '/api/reload');
  assert.equal(bad.status, 400);
  assert.match(bad.json().error, /services\.web\.listen/);
});

test('access log: one JSON line per closed session, with the termination cause', async (t) => {
  const be = await echoServer(t);
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l));
      cb();
    },
  });
  const cfg = parseConfig(
    {
      log: { access: true },
      services: {
        web: {
          listen: '127.0.0.1:0',
          backends: [addr(be)],
          pool: { min_idle: 0 },
          health: { kind: 'none' },
        },
      },
    },
    { allowEphemeralListen: true },
  );
  const lb = new LoadBalancer(cfg, { logger: createLogger('info', sink) });
  await lb.start();
  t.after(() => lb.close(0));
  const c = await openClient(lb.address('web').port);
  c.end('hello');
  assert.equal((await readAll(c)).toString(), 'hello');
  c.destroy();
  await waitFor(() => lines.some((l) => l.log === 'access'), 3000, 'access line');
  const line = lines.find((l) => l.log === 'access') as Record<string, unknown>;
  assert.equal(line.service, 'web');
  assert.equal(line.backend, addr(be));
  assert.equal(line.bytesIn, 5);
  assert.equal(line.bytesOut, 5);
  assert.equal(line.pool, 'miss');
  assert.equal(line.retries, 0);
  assert.equal(line.cause, 'client-closed');
  assert.match(String(line.client), /^127\.0\.0\.1:\d+$/);
  assert.equal(typeof line.ms, 'number');
  assert.equal(typeof line.connectMs, 'number');
});
