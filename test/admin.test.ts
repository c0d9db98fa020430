import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { ADMIN_LIMITS } from '../src/admin/server.js';
import { parseConfig } from '../src/config/schema.js';
import { LbError } from '../src/errors.js';
import { LoadBalancer } from '../src/load-balancer.js';
import { startAdmin } from './helpers/admin.js';
import { runBalancer } from './helpers/cluster.js';
import { logLines } from './helpers/log-lines.js';
import {
  addr,
  echoServer,
  ended,
  httpGet,
  httpServer,
  openClient,
  readAll,
  startLb,
  svc,
  waitFor,
} from './helpers/servers.js';

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
    `blitz_lb_dial_failures_total{${b},cause="refused"} 0`,
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
  // Node's process metrics under the stock names dashboards query.
  assert.match(r.text, /\nprocess_cpu_user_seconds_total \d/);
  assert.match(r.text, /\nprocess_start_time_seconds \d/);
  assert.match(r.text, /\nnodejs_heap_size_used_bytes \d/);
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
    (await call('PUT', `/api/services/web/backends/${addr(b)}/weight`, '{"weight": -1}')).status,
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

/** Writes `request` as is on a fresh connection and reads until the server closes it. */
async function rawRequest(port: number, request: string) {
  const c = await openClient(port);
  c.write(request);
  const text = (await readAll(c)).toString();
  c.destroy();
  const split = text.indexOf('\r\n\r\n');
  return {
    status: Number(text.slice(9, 12)),
    head: text.slice(0, split).toLowerCase(),
    body: text.slice(split + 4),
  };
}

const get = (path: string, host: string | null): string =>
  host === null
    ? `GET ${path} HTTP/1.0\r\n\r\n`
    : `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;

/** Resolves with what the server sent once it has closed `c`; rejects if it has not within `ms`. */
function closedWithin(c: Socket, ms: number, what: string): Promise<string> {
  const chunks: Buffer[] = [];
  c.on('data', (d: Buffer) => chunks.push(d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: still open after ${ms} ms`)), ms);
    void ended(c).then(() => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString());
    });
  });
}

test('admin: writes from another origin or without a JSON content type are refused; only known Host names are served (CSRF, DNS rebinding)', async (t) => {
  const a = await httpServer(t, 'a');
  const lb = await startLb(t, svc([addr(a)]));
  const { call, port } = await startAdmin(t, lb, {
    reload: async () => ({ added: [], removed: [], changed: [] }),
  });
  const drain = `/api/services/web/backends/${addr(a)}/drain`;
  const state = async () =>
    (await call('GET', '/api/services')).json().services[0].backends[0].state;

  // What a page on another site can send: a form post, or a fetch carrying its Origin.
  const evil = { origin: 'http://evil.example' };
  const form = { 'content-type': 'application/x-www-form-urlencoded' };
  assert.equal((await call('POST', drain, 'x=1', { ...evil, ...form })).status, 403);
  assert.equal((await call('POST', drain, '{}', evil)).status, 403);
  assert.equal((await call('POST', '/api/reload', '{}', evil)).status, 403, 'reload is a write');
  const sameHostOtherPort = { origin: `http://127.0.0.1:${port + 1}` };
  assert.equal((await call('POST', drain, '{}', sameHostOtherPort)).status, 403);
  assert.equal((await call('POST', drain, 'x=1', form)).status, 415);
  assert.equal(
    (await call('POST', drain, undefined, { 'content-type': 'text/plain' })).status,
    415,
  );
  const bare = await fetch(`http://127.0.0.1:${port}${drain}`, { method: 'POST' });
  assert.equal(bare.status, 415, 'no content type at all');
  assert.equal(await state(), 'up', 'no refused write changed anything');

  // The admin's own page (same origin) and curl (no Origin) may write.
  const own = await call('POST', drain, undefined, { origin: `http://127.0.0.1:${port}` });
  assert.equal(own.status, 200);
  assert.equal(await state(), 'draining');
  assert.equal((await call('POST', `/api/services/web/backends/${addr(a)}/enable`)).status, 200);
  const json = { 'content-type': 'application/json; charset=utf-8' };
  assert.equal((await call('POST', '/api/reload', undefined, json)).status, 200);

  // DNS rebinding: the attacker's name in Host is refused, for reads too.
  const refused = await rawRequest(port, get('/api/services', `evil.example:${port}`));
  assert.equal(refused.status, 403);
  assert.match(JSON.parse(refused.body).error, /allowed_hosts/);
  assert.equal((await rawRequest(port, get('/metrics', 'lb.internal'))).status, 403);
  for (const host of [`127.0.0.1:${port}`, 'localhost:8000', `[::1]:${port}`, 'LOCALHOST', null]) {
    assert.equal((await rawRequest(port, get('/api/services', host))).status, 200, String(host));
  }

  // Names the operator listed are served, in any case; the same name on another port is not.
  const other = await startAdmin(t, lb, { allowedHosts: ['lb.internal:9900', 'lb.example'] });
  for (const [host, status] of [
    ['lb.internal:9900', 200],
    ['LB.Internal:9900', 200],
    ['lb.example', 200],
    ['lb.internal:9901', 403],
    ['lb.internal', 403],
  ] as const) {
    assert.equal((await rawRequest(other.port, get('/healthz', host))).status, status, host);
  }
});

test('admin: [admin] allowed_hosts is validated and reaches the admin server from the command line', async (t) => {
  const base = { services: { web: { listen: '127.0.0.1:8080', backends: ['127.0.0.1:9001'] } } };
  const admin = (allowed: unknown) =>
    parseConfig({ ...base, admin: { listen: '127.0.0.1:9900', allowed_hosts: allowed } }).admin;
  assert.deepEqual(admin(['lb.internal:9900', 'LB.Example', '[::1]:9900', '[::1]'])?.allowedHosts, [
    'lb.internal:9900',
    'lb.example',
    '[::1]:9900',
    '[::1]',
  ]);
  assert.deepEqual(
    parseConfig({ ...base, admin: { listen: '127.0.0.1:9900' } }).admin?.allowedHosts,
    [],
  );
  assert.throws(() => admin('lb.internal'), /admin\.allowed_hosts: expected an array/);
  assert.throws(
    () => admin(['lb.internal:0', 7, 'a b:1']),
    (err: LbError) =>
      err.code === 'LB_ERR_CONFIG' &&
      /admin\.allowed_hosts\[0\]: expected "name:port"/.test(err.message) &&
      /admin\.allowed_hosts\[1\]/.test(err.message) &&
      /admin\.allowed_hosts\[2\]/.test(err.message),
  );

  const be = await httpServer(t, 'a');
  const cli = await runBalancer(
    t,
    (p, ap) => `
[admin]
listen = "127.0.0.1:${ap}"
allowed_hosts = ["lb.internal:${ap}"]
[services.web]
listen = "127.0.0.1:${p}"
backends = ["${addr(be)}"]
`,
  );
  assert.equal(
    (await rawRequest(cli.adminPort, get('/healthz', `lb.internal:${cli.adminPort}`))).status,
    200,
  );
  assert.equal(
    (await rawRequest(cli.adminPort, get('/healthz', `lb.other:${cli.adminPort}`))).status,
    403,
  );
});

test('admin: at most 64 connections are held; the rest are closed at accept', async (t) => {
  const a = await httpServer(t, 'a');
  const lb = await startLb(t, svc([addr(a)]));
  const { call, port } = await startAdmin(t, lb);
  const cap = ADMIN_LIMITS.maxConnections;
  assert.equal(cap, 64);
  const clients: Socket[] = [];
  t.after(() => {
    for (const c of clients) c.destroy();
  });
  let closed = 0;
  for (let i = 0; i < cap + 6; i++) {
    const c = await openClient(port);
    c.resume();
    void ended(c).then(() => closed++);
    clients.push(c);
  }
  // Well inside the header deadline, so only the cap can have closed any.
  await waitFor(() => closed >= 6, 3000, 'the connections past the cap to be closed');
  assert.equal(closed, 6);
  for (const c of clients) c.destroy();
  await waitFor(
    async () => (await call('GET', '/healthz').catch(() => null))?.status === 200,
    3000,
    'a request once the idle connections are gone',
  );
});

test('admin: silent, slow and idle connections are closed within seconds', async (t) => {
  const a = await httpServer(t, 'a');
  const lb = await startLb(t, svc([addr(a)]));
  const { port } = await startAdmin(t, lb);
  const L = ADMIN_LIMITS;
  const slack = L.checkIntervalMs + 1500;
  const timers: NodeJS.Timeout[] = [];
  const sockets: Socket[] = [];
  t.after(() => {
    for (const x of timers) clearInterval(x);
    for (const c of sockets) c.destroy();
  });
  const open = async () => {
    const c = await openClient(port);
    sockets.push(c);
    return c;
  };
  const trickle = (c: Socket, bytes: string) => {
    let i = 0;
    timers.push(setInterval(() => c.write(bytes[i++ % bytes.length] as string), 300));
  };

  const silent = await open();
  const slowHeaders = await open();
  slowHeaders.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Slow: `);
  trickle(slowHeaders, 'abcdef');
  const slowBody = await open();
  slowBody.write(
    `PUT /api/services/web/backends/${addr(a)}/weight HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
      'Content-Type: application/json\r\nContent-Length: 4000\r\n\r\n',
  );
  trickle(slowBody, ' ');
  const idle = await open();
  idle.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);

  const [, h, b, i] = await Promise.all([
    closedWithin(silent, L.headersTimeoutMs + slack, 'a connection that sends nothing'),
    closedWithin(slowHeaders, L.headersTimeoutMs + slack, 'headers sent a byte at a time'),
    closedWithin(slowBody, L.requestTimeoutMs + slack, 'a body sent a byte at a time'),
    closedWithin(idle, L.keepAliveTimeoutMs + slack, 'an idle keep-alive connection'),
  ]);
  assert.match(h, /^HTTP\/1\.1 408/);
  assert.match(b, /^HTTP\/1\.1 408/);
  assert.match(i, /^HTTP\/1\.1 200/);
  assert.equal(lb.service('web').backends.all[0]?.weight, 1, 'the cut-short write did nothing');
});

test('admin: a bad URL is a 400 with no stack trace logged; a large body a 413; HEAD answers like GET', async (t) => {
  const a = await httpServer(t, 'a');
  const lb = await startLb(t, svc([addr(a)]));
  const { lines, logger: sinkLogger } = logLines();
  const { call, port, base } = await startAdmin(t, lb, { log: sinkLogger });
  const host = `127.0.0.1:${port}`;
  for (const request of [
    `GET http://[/ HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
    `POST /api/services/web/backends/%ff/drain HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
    `POST /api/services/%/backends/${addr(a)}/drain HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
    `GET /api/services/web/backends/%E0%A4%A/drain HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
  ]) {
    const r = await rawRequest(port, request);
    assert.equal(r.status, 400, request);
    assert.match(r.head, /content-type: application\/json/);
    assert.equal(typeof JSON.parse(r.body).error, 'string');
  }
  assert.deepEqual(
    lines.filter((l) => Number(l.level) >= 50 || JSON.stringify(l).includes('\\n    at ')),
    [],
    'nothing logged as an error, no stack trace',
  );

  // Past 4 KiB: answered 413 (the body is read and dropped, so no reset), and nothing changes.
  const weight = `/api/services/web/backends/${addr(a)}/weight`;
  const big = await call('PUT', weight, JSON.stringify({ weight: 2, pad: 'x'.repeat(64 * 1024) }));
  assert.equal(big.status, 413);
  assert.match(big.json().error, /body over 4096 bytes/);
  assert.equal(lb.service('web').backends.all[0]?.weight, 1);
  // A body declared far larger is refused before it is sent.
  const c = await openClient(port);
  c.write(
    `PUT ${weight} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: ${64 << 20}\r\n\r\n`,
  );
  assert.match(await closedWithin(c, 3000, 'a 64 MiB declared body'), /^HTTP\/1\.1 413/);
  assert.equal(
    (await call('PUT', weight, '{"weight": 3}')).status,
    200,
    'a small body still works',
  );

  for (const path of ['/', '/healthz', '/api/services', '/metrics']) {
    const g = await fetch(base + path);
    const h = await fetch(base + path, { method: 'HEAD' });
    assert.equal(h.status, 200, path);
    assert.equal(h.headers.get('content-type'), g.headers.get('content-type'), path);
    assert.equal(await h.text(), '', path);
    // The view and metrics carry live figures, so only the fixed bodies have a comparable length.
    const length = Number(h.headers.get('content-length'));
    if (path === '/' || path === '/healthz')
      assert.equal(length, Buffer.byteLength(await g.text()), path);
    else assert.ok(length > 0, path);
  }
});

test('admin: the bearer scheme is case-insensitive (RFC 7235); a wrong, longer or missing token is a 401', async (t) => {
  const a = await httpServer(t, 'a');
  const lb = await startLb(t, svc([addr(a)]));
  const { call } = await startAdmin(t, lb, { token: 's3cret-token' });
  const drain = `/api/services/web/backends/${addr(a)}/drain`;
  for (const authorization of [
    'bearer s3cret-token',
    'BEARER s3cret-token',
    'Bearer s3cret-token',
  ]) {
    assert.equal(
      (await call('POST', drain, undefined, { authorization })).status,
      200,
      authorization,
    );
  }
  for (const authorization of [
    'Bearer s3cret-tokeX',
    'Bearer s3cret-token-and-more',
    'Bearer s3cret',
    'Bearer',
    'Basic czNjcmV0LXRva2Vu',
    's3cret-token',
  ]) {
    const r = await call('POST', drain, undefined, { authorization });
    assert.equal(r.status, 401, authorization);
  }
  const none = await call('POST', drain);
  assert.equal(none.status, 401);
  assert.match(none.json().error, /bearer token/);
});

test('access log: one JSON line per closed session, with the termination cause', async (t) => {
  const be = await echoServer(t);
  const { lines, logger: sinkLogger } = logLines();
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
  const lb = new LoadBalancer(cfg, { logger: sinkLogger });
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
