import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { REDACTED } from '../src/admin/config-view.js';
import { parseConfig } from '../src/config/schema.js';
import type { ConfigError } from '../src/errors.js';
import { startAdmin, value } from './helpers/admin.js';
import { runCli, tempConfig } from './helpers/cli.js';
import {
  addr,
  echoServer,
  ended,
  httpGet,
  httpServer,
  openClient,
  readBytes,
  refusedPort,
  startLb,
  svc,
  waitFor,
} from './helpers/servers.js';

const TOKEN = 'write-token-123';
const READ = 'read-token-456';
const auth = (tok: string) => ({ authorization: `Bearer ${tok}` });

test('api: GET /api/info says what this process is, and how the last reload went', async (t) => {
  const a = await httpServer(t, 'a');
  const lb = await startLb(t, svc([addr(a)]));
  const { call } = await startAdmin(t, lb, {
    reload: async () => {
      throw new Error('config.toml: services.web.listen: bad');
    },
  });
  let info = (await call('GET', '/api/info')).json();
  assert.match(info.version, /^\d+\.\d+\.\d+/);
  assert.equal(info.pid, process.pid);
  assert.equal(info.node, process.version);
  assert.equal(typeof info.uptimeSeconds, 'number');
  assert.equal(info.configPath, '<test>');
  assert.equal(info.workers, 1);
  assert.deepEqual(info.services, ['web']);
  assert.equal(info.lastReload.at, null);
  assert.equal(info.lastReload.ok, true);
  assert.equal((await call('POST', '/api/reload')).status, 400);
  info = (await call('GET', '/api/info')).json();
  assert.equal(info.lastReload.ok, false);
  assert.match(info.lastReload.error, /services\.web\.listen: bad/);
  assert.ok(Date.parse(info.lastReload.at) <= Date.now());
});

test('api: GET /api/config is the effective config, defaults filled in, secrets redacted', async (t) => {
  const a = await httpServer(t, 'a');
  const raw = svc([addr(a)], { discovery: undefined });
  const lb = await startLb(t, {
    ...raw,
    admin: { listen: '127.0.0.1:0', token: TOKEN, read_token: READ },
  });
  const { call } = await startAdmin(t, lb, { token: TOKEN, readToken: READ });
  const r = await call('GET', '/api/config', undefined, auth(READ));
  assert.equal(r.status, 200);
  const c = r.json();
  assert.equal(c.admin.token, REDACTED);
  assert.equal(c.admin.readToken, REDACTED);
  assert.ok(!r.text.includes(TOKEN) && !r.text.includes(READ), 'no token in the answer');
  const web = c.services[0];
  assert.equal(web.name, 'web');
  // Defaults the file did not give.
  assert.equal(web.maxRetries, 3);
  assert.equal(web.idleTimeoutMs, 600_000);
  assert.equal(web.balance, 'round-robin');
  assert.equal(web.backends[0].weight, 1);
  assert.equal(c.process.shutdownTimeoutMs, 30_000);
});

test('api: POST and DELETE a backend, with the file’s validation; weight 0 allowed', async (t) => {
  const a = await httpServer(t, 'a');
  const b = await httpServer(t, 'b');
  const lb = await startLb(t, svc([addr(a)]));
  const { call } = await startAdmin(t, lb);
  const path = `/api/services/web/backends/${addr(b)}`;
  const bad = await call('POST', path, '{"weight": -1, "max_conections": 3}');
  assert.equal(bad.status, 400);
  assert.match(bad.json().error, /weight: must be 0-1000000, got -1/);
  assert.match(bad.json().error, /max_conections: unknown key; did you mean "max_connections"\?/);
  assert.equal((await call('POST', '/api/services/web/backends/nohost', '{}')).status, 400);
  assert.equal((await call('POST', '/api/services/nope/backends/127.0.0.1:1', '{}')).status, 404);
  assert.equal(lb.service('web').backends.all.length, 1, 'nothing added by a bad call');

  const added = await call('POST', path, '{"weight": 2, "slow_start": "0s", "max_connections": 9}');
  assert.equal(added.status, 201);
  assert.equal(added.json().backend.weight, 2);
  assert.equal(lb.service('web').backends.get(addr(b))?.maxConnections, 9);
  assert.equal((await call('POST', path, '{}')).status, 409, 'already there');
  const seen = new Set<string>();
  for (let i = 0; i < 6; i++) seen.add(await httpGet(lb.address('web').port));
  assert.deepEqual([...seen].sort(), ['a', 'b']);

  // Weight 0: a soft stop, on a live backend and at adding.
  assert.equal((await call('PUT', `${path}/weight`, '{"weight": 0}')).status, 200);
  for (let i = 0; i < 3; i++) assert.equal(await httpGet(lb.address('web').port), 'a');
  const c = await refusedPort();
  assert.equal(
    (await call('POST', `/api/services/web/backends/${addr(c)}`, '{"weight": 0}')).status,
    201,
  );

  assert.equal((await call('DELETE', path)).status, 200);
  assert.equal(lb.service('web').backends.get(addr(b)), undefined);
  assert.equal((await call('DELETE', path)).status, 404);
  assert.equal((await call('PUT', path)).status, 405);
});

test('api: force a backend’s health up or down; paused checks leave it as forced until resumed', async (t) => {
  const dead = await refusedPort();
  const a = await httpServer(t, 'a');
  const lb = await startLb(
    t,
    svc([addr(a), addr(dead)], {
      health: { kind: 'tcp', interval: '1h', timeout: '500ms', fall: 1 },
    }),
  );
  const { call, metrics } = await startAdmin(t, lb);
  await lb.performHealthCheck();
  const b = () => lb.service('web').backends.get(addr(dead));
  assert.equal(b()?.state, 'down');
  const path = `/api/services/web/backends/${addr(dead)}`;
  assert.equal((await call('POST', `${path}/force-up`)).json().backend.state, 'up');
  // Checks still run: the next probe takes it down again.
  await lb.performHealthCheck();
  assert.equal(b()?.state, 'down');
  assert.equal((await call('POST', `${path}/pause-checks`)).status, 200);
  await call('POST', `${path}/force-up`);
  await lb.performHealthCheck();
  assert.equal(b()?.state, 'up', 'paused: no probe changes it');
  assert.equal(
    value(await metrics(), `blitz_lb_backend_checks_paused{service="web",backend="${addr(dead)}"}`),
    1,
  );
  assert.equal((await call('POST', `${path}/resume-checks`)).status, 200);
  await waitFor(() => b()?.state === 'down', 3000, 'the resumed probe');
  // Forced down: a healthy backend out of rotation at once.
  const r = await call('POST', `/api/services/web/backends/${addr(a)}/force-down`);
  assert.equal(r.json().backend.state, 'down');
  assert.equal(r.json().backend.reason, 'forced down by operator');
  assert.equal((await call('POST', `${path}/reboot`)).status, 404);
});

test('api: a service’s open sessions, paged by limit and cursor or offset, and ending one', async (t) => {
  const e = await echoServer(t);
  const lb = await startLb(t, svc([addr(e)]));
  const { call } = await startAdmin(t, lb);
  const clients: Socket[] = [];
  for (let i = 0; i < 3; i++) {
    const c = await openClient(lb.address('web').port);
    c.write(Buffer.alloc(10 * (i + 1)));
    await readBytes(c, 10 * (i + 1));
    clients.push(c);
  }
  t.after(() => {
    for (const c of clients) c.destroy();
  });
  const p1 = (await call('GET', '/api/services/web/sessions?limit=2')).json();
  assert.equal(p1.total, 3);
  assert.equal(p1.sessions.length, 2);
  const s0 = p1.sessions[0];
  assert.equal(s0.backend, addr(e));
  assert.equal(s0.state, 'open');
  assert.equal(s0.client, `127.0.0.1:${clients[0]?.localPort}`);
  assert.equal(s0.bytesFromClient, 10);
  assert.equal(s0.bytesToClient, 10);
  assert.equal(s0.bytesToBackend, 10);
  assert.equal(s0.bytesFromBackend, 10);
  assert.ok(s0.ageSeconds >= 0);
  assert.equal(p1.sessions[1].bytesFromClient, 20);
  assert.equal(p1.next, p1.sessions[1].id);
  const p2 = (await call('GET', `/api/services/web/sessions?limit=2&after=${p1.next}`)).json();
  assert.deepEqual(
    p2.sessions.map((s: { bytesFromClient: number }) => s.bytesFromClient),
    [30],
  );
  assert.equal(p2.next, null);
  const byOffset = (await call('GET', '/api/services/web/sessions?limit=1&offset=1')).json();
  assert.equal(byOffset.sessions[0].id, p1.sessions[1].id);
  assert.equal((await call('GET', '/api/services/web/sessions?limit=x')).status, 400);
  assert.equal((await call('GET', '/api/services/nope/sessions')).status, 404);

  const gone = ended(clients[1] as Socket);
  assert.equal(
    (await call('DELETE', `/api/services/web/sessions/${p1.sessions[1].id}`)).status,
    200,
  );
  await gone;
  await waitFor(() => lb.service('web').activeSessions === 2);
  assert.equal(
    (await call('DELETE', `/api/services/web/sessions/${p1.sessions[1].id}`)).status,
    404,
  );
  assert.equal((await call('DELETE', '/api/services/web/sessions/abc')).status, 400);
});

test('api: every call that writes needs the write token; the read token reads and never writes', async (t) => {
  const a = await httpServer(t, 'a');
  const e = await echoServer(t);
  const lb = await startLb(t, svc([addr(a), addr(e)]));
  const { call } = await startAdmin(t, lb, { token: TOKEN, readToken: READ });
  const c = await openClient(lb.address('web').port);
  t.after(() => c.destroy());
  await waitFor(() => lb.service('web').activeSessions === 1);
  const [session] = [...lb.service('web').openSessions];
  const other = await refusedPort();
  const writes: [string, string, string?][] = [
    ['POST', `/api/services/web/backends/${addr(other)}`, '{}'],
    ['POST', `/api/services/web/backends/${addr(a)}/force-down`],
    ['POST', `/api/services/web/backends/${addr(a)}/force-up`],
    ['POST', `/api/services/web/backends/${addr(a)}/pause-checks`],
    ['POST', `/api/services/web/backends/${addr(a)}/resume-checks`],
    ['POST', `/api/services/web/backends/${addr(a)}/drain`],
    ['PUT', `/api/services/web/backends/${addr(a)}/weight`, '{"weight": 0}'],
    ['DELETE', `/api/services/web/backends/${addr(other)}`],
    ['DELETE', `/api/services/web/sessions/${session?.id}`],
  ];
  for (const [method, path, body] of writes) {
    assert.equal((await call(method, path, body)).status, 401, `${method} ${path} without a token`);
    assert.equal(
      (await call(method, path, body, auth(READ))).status,
      401,
      `${method} ${path} with the read token`,
    );
  }
  assert.equal(lb.service('web').backends.all.length, 2);
  assert.equal(lb.service('web').activeSessions, 1);
  assert.equal(lb.service('web').backends.get(addr(a))?.state, 'up');
  for (const [method, path, body] of writes) {
    const r = await call(method, path, body, auth(TOKEN));
    assert.ok(r.status === 200 || r.status === 201, `${method} ${path}: ${r.status} ${r.text}`);
  }
  // Reads: the read token or the write token; nothing else.
  for (const path of [
    '/metrics',
    '/api/services',
    '/api/info',
    '/api/config',
    '/api/services/web/sessions',
  ]) {
    assert.equal((await call('GET', path)).status, 401, path);
    assert.equal((await call('GET', path, undefined, auth('wrong-token-000'))).status, 401, path);
    assert.equal((await call('GET', path, undefined, auth(READ))).status, 200, path);
    assert.equal((await call('GET', path, undefined, auth(TOKEN))).status, 200, path);
  }
  // The page itself holds no data; /healthz is for health checkers.
  assert.equal((await call('GET', '/')).status, 200);
  assert.equal((await call('GET', '/healthz')).status, 200);
});

test('api: [admin] read_token, listen = "unix:PATH" and mode are validated', () => {
  const base = (admin: Record<string, unknown>) => ({
    admin,
    services: { web: { listen: '127.0.0.1:8080', backends: ['127.0.0.1:9001'] } },
  });
  const problems = (admin: Record<string, unknown>): string => {
    try {
      parseConfig(base(admin), { source: 'c.toml', baseDir: '/etc/blitz-lb' });
      return '';
    } catch (err) {
      return (err as ConfigError).message;
    }
  };
  assert.match(
    problems({ listen: '127.0.0.1:9900', read_token: READ }),
    /admin\.read_token: needs admin\.token/,
  );
  assert.match(
    problems({ listen: '127.0.0.1:9900', token: TOKEN, read_token: TOKEN }),
    /must differ/,
  );
  assert.match(
    problems({ listen: '127.0.0.1:9900', read_token: 'short' }),
    /admin\.read_token: expected 8-4096/,
  );
  assert.match(
    problems({ listen: '127.0.0.1:9900', mode: '0660' }),
    /admin\.mode: only for a Unix socket/,
  );
  assert.match(
    problems({ listen: 'unix:/run/a.sock', mode: '999' }),
    /admin\.mode: expected octal/,
  );
  assert.match(problems({ listen: 'unix:' }), /admin\.listen: expected "unix:/);
  assert.match(problems({ listen: `unix:/${'x'.repeat(120)}` }), /at most 107 bytes/);
  const ok = parseConfig(
    base({ listen: 'unix:run/admin.sock', mode: '0660', token: TOKEN, read_token: READ }),
    {
      baseDir: '/etc/blitz-lb',
    },
  );
  assert.deepEqual(ok.admin?.listen, {
    unix: '/etc/blitz-lb/run/admin.sock',
    mode: 0o660,
    address: 'unix:/etc/blitz-lb/run/admin.sock',
  });
  assert.equal(ok.admin?.readToken, READ);
});

test('api: the admin server on a Unix socket: its mode, a stale file replaced, the file removed at close', async (t) => {
  const a = await httpServer(t, 'a');
  const lb = await startLb(t, svc([addr(a)]));
  const dir = mkdtempSync(join(tmpdir(), 'blitz-lb-admin-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'admin.sock');
  const listen = { unix: path, mode: 0o660, address: `unix:${path}` };
  const get = (p: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request({ socketPath: path, path: p, agent: false }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => {
          body += d.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
  const first = await startAdmin(t, lb, { listen });
  assert.equal(statSync(path).mode & 0o777, 0o660);
  const r = await get('/api/services');
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.body).services[0].name, 'web');
  await first.admin.close();
  assert.equal(existsSync(path), false, 'removed at close');
  // A file left by a run that crashed (nothing accepts on it) is replaced.
  // A process that bound the socket and died without removing it (as a killed run leaves it).
  spawnSync('python3', [
    '-c',
    `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(path)})`,
  ]);
  assert.ok(existsSync(path));
  await startAdmin(t, lb, { listen: { ...listen, mode: 0o600 } });
  assert.equal(statSync(path).mode & 0o777, 0o600);
  assert.equal((await get('/healthz')).status, 200);
});

test('check: shows the admin socket with its mode and which tokens guard it, never the tokens', (t) => {
  const file = tempConfig(
    t,
    `[admin]
listen = "unix:admin.sock"
mode = "0660"
token = "${TOKEN}"
read_token = "${READ}"
[services.web]
listen = "127.0.0.1:8080"
backends = ["127.0.0.1:9001"]
`,
  );
  const r = runCli(['check', '--config', file]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /admin: unix:\/.*\/admin\.sock \(mode 0660\), token and read_token/);
  assert.ok(!r.stdout.includes(TOKEN) && !r.stdout.includes(READ));
});
