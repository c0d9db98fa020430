import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createSecureServer } from 'node:http2';
import { connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { fetch as undiciFetch, request as undiciRequest } from 'undici';
import { main } from '../examples/http-request.js';
import { createRegistry } from '../src/admin/metrics.js';
import { serviceView } from '../src/admin/views.js';
import { parseConfig } from '../src/config/schema.js';
import type { LoadBalancer } from '../src/load-balancer.js';
import { runCli, tempConfig } from './helpers/cli.js';
import { makePki } from './helpers/pki.js';
import { addr, listen, refusedPort, startLb, svc, waitFor } from './helpers/servers.js';

/** What a test backend saw: requests by method, connections, and requests it holds unanswered. */
interface Counted {
  port: number;
  name: string;
  requests: number;
  posts: number;
  connections: number;
  held: ServerResponse[];
  server: Server;
  sockets: Set<Socket>;
  /** Kills it: no listener, every connection reset. */
  kill(): void;
}

type Behaviour = (req: IncomingMessage, res: ServerResponse, c: Counted) => void;

const answer: Behaviour = (req, res, c) => {
  res.setHeader('x-backend', c.name);
  res.end(`${c.name} ${req.headers.host ?? ''}`);
};

/** A Node HTTP backend (keep-alive on) that counts what reaches it; `behave` answers. */
async function backend(t: TestContext, name: string, behave: Behaviour = answer): Promise<Counted> {
  const server = createServer();
  const c: Counted = {
    port: 0,
    name,
    requests: 0,
    posts: 0,
    connections: 0,
    held: [],
    server: server as unknown as Server,
    sockets: new Set(),
    kill() {
      server.close();
      for (const s of c.sockets) s.resetAndDestroy();
    },
  };
  server.on('connection', (s: Socket) => {
    c.connections++;
    c.sockets.add(s);
    s.on('close', () => c.sockets.delete(s));
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const body: Buffer[] = [];
    req.on('data', (d: Buffer) => body.push(d));
    req.on('end', () => {
      c.requests++;
      if (req.method === 'POST') c.posts++;
      behave(req, res, c);
    });
  });
  c.port = await listen(t, c.server);
  return c;
}

const hold: Behaviour = (_req, res, c) => {
  c.held.push(res);
};

/** nginx on a free loopback port answering "nginx" (skipped where it is not installed, never in CI). */
async function nginx(t: TestContext): Promise<number | null> {
  const bin = '/usr/sbin/nginx';
  if (!existsSync(bin)) {
    assert.notEqual(process.env.CI, 'true', 'nginx is installed by .ci/run');
    t.skip('nginx not installed');
    return null;
  }
  const port = await refusedPort();
  const dir = mkdtempSync(join(tmpdir(), 'blitz-nginx-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    join(dir, 'nginx.conf'),
    `daemon off; master_process off; worker_processes 1; error_log ${dir}/error.log; pid ${dir}/nginx.pid;
events { worker_connections 64; }
http { access_log off; client_body_temp_path ${dir}/cb; proxy_temp_path ${dir}/p; fastcgi_temp_path ${dir}/f; uwsgi_temp_path ${dir}/u; scgi_temp_path ${dir}/s;
  server { listen 127.0.0.1:${port}; location / { return 200 "nginx $http_host"; } } }`,
  );
  const proc = spawn(bin, ['-c', join(dir, 'nginx.conf'), '-p', dir], { stdio: 'ignore' });
  t.after(() => proc.kill('SIGKILL'));
  await waitFor(
    () =>
      new Promise<boolean>((resolve) => {
        const c = connect(port, '127.0.0.1');
        c.once('connect', () => {
          c.destroy();
          resolve(true);
        });
        c.once('error', () => resolve(false));
      }),
    5000,
    'nginx listening',
  );
  return port;
}

function tally(answers: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const a of answers) {
    const name = a.split(' ')[0] as string;
    out[name] = (out[name] ?? 0) + 1;
  }
  return out;
}

function httpOf(lb: LoadBalancer, port: number) {
  const s = lb.service('web');
  const b = s.backends.get(addr(port));
  assert.ok(b, `backend ${port}`);
  return s.httpStats.of(b);
}

test('http: requests spread as the strategy says (smooth weighted round-robin over Node and nginx), kept alive per backend', async (t) => {
  const a = await backend(t, 'a');
  const b = await backend(t, 'b');
  const ng = await nginx(t);
  if (ng === null) return;
  const lb = await startLb(
    t,
    svc([addr(a.port), addr(b.port), { address: addr(ng), weight: 2 }], {
      balance: 'round-robin',
    }),
  );
  const answers: string[] = [];
  for (let i = 0; i < 40; i++) answers.push((await lb.request('web', { path: '/' })).text());
  assert.deepEqual(tally(answers), { a: 10, b: 10, nginx: 20 });
  // Without a host header, each backend is sent its own address as Host.
  assert.ok(answers.includes(`nginx ${addr(ng)}`), answers.join(','));
  // One after another, each backend kept one connection alive for all its requests.
  assert.equal(a.connections, 1);
  assert.equal(b.connections, 1);
  assert.equal(httpOf(lb, ng)?.successes, 20);
});

test("http: a new connection is a warm socket from the service's pool when there is one", async (t) => {
  const a = await backend(t, 'a');
  const lb = await startLb(t, svc([addr(a.port)], { pool: { min_idle: 1, max_idle: 1 } }));
  const s = lb.service('web');
  await waitFor(() => s.pool.idleCount === 1, 3000, 'the warm socket');
  assert.match((await lb.request('web')).text(), /^a /);
  assert.equal(s.pool.counters.hits, 1);
  assert.equal(s.pool.counters.misses, 0);
});

test('http: least-connections sends a request past a backend busy with a held one', async (t) => {
  const busy = await backend(t, 'busy', hold);
  const free = await backend(t, 'free');
  const lb = await startLb(
    t,
    svc([addr(busy.port), addr(free.port)], { balance: 'least-connections' }),
  );
  const held = lb.request('web');
  await waitFor(() => busy.held.length === 1, 3000, 'the held request');
  for (let i = 0; i < 5; i++) assert.match((await lb.request('web')).text(), /^free /);
  busy.held[0]?.end('busy');
  assert.equal((await held).text(), 'busy');
});

test('http: a backend killed mid-run costs no idempotent request', async (t) => {
  const a = await backend(t, 'a');
  const b = await backend(t, 'b');
  // c takes requests and answers none of them, until it is killed with them in flight.
  const c = await backend(t, 'c', hold);
  const lb = await startLb(t, svc([addr(a.port), addr(b.port), addr(c.port)]));
  const all: Promise<number>[] = [];
  const send = (i: number): void => {
    const method = ['GET', 'PUT', 'DELETE', 'HEAD'][i % 4] as string;
    const body = method === 'PUT' ? 'x'.repeat(100) : null;
    all.push(lb.request('web', { method, path: `/r${i}`, body }).then((r) => r.statusCode));
  };
  for (let i = 0; i < 30; i++) send(i);
  await waitFor(() => c.held.length >= 3, 3000, 'requests in flight on c');
  c.kill();
  for (let i = 30; i < 60; i++) send(i);
  const results = await Promise.allSettled(all);
  const failed = results.filter((r) => r.status === 'rejected');
  assert.deepEqual(failed, [], 'no request failed');
  assert.equal(a.requests + b.requests, 60, 'a and b answered every one');
  assert.ok(results.every((r) => r.status === 'fulfilled' && r.value === 200));
  const s = lb.service('web');
  const onC = httpOf(lb, c.port);
  assert.ok(onC && onC.failures >= 3, 'the killed requests count as failures on c');
  assert.ok(s.httpStats.retries >= 3);
});

test('http: a POST is never sent twice, even when the backend resets after reading it; GET and idempotent: true are retried', async (t) => {
  const resetter = await backend(t, 'resetter', (_req, res) => res.socket?.resetAndDestroy());
  const good = await backend(t, 'good');
  const lb = await startLb(t, svc([addr(resetter.port), addr(good.port)]));
  let failed = 0;
  for (let i = 0; i < 6; i++) {
    try {
      const r = await lb.request('web', { method: 'POST', path: '/order', body: `order ${i}` });
      assert.match(r.text(), /^good /);
    } catch (err) {
      failed++;
      assert.match(String((err as { code?: string }).code), /^(ECONNRESET|UND_ERR_SOCKET)$/);
    }
  }
  // Round-robin sent half of them to the resetter, which read each once; none went anywhere else.
  assert.equal(resetter.posts, 3);
  assert.equal(failed, 3);
  assert.equal(good.posts, 3);
  assert.equal(resetter.posts + good.posts, 6, 'every POST reached exactly one backend once');
  assert.equal(lb.service('web').httpStats.retries, 0);

  for (let i = 0; i < 4; i++)
    assert.match((await lb.request('web', { path: '/' })).text(), /^good /);
  for (let i = 0; i < 4; i++) {
    const r = await lb.request('web', { method: 'POST', body: 'safe', idempotent: true });
    assert.match(r.text(), /^good /);
  }
  assert.ok(
    resetter.posts > 3,
    'an idempotent POST reached the resetter, and was answered by good',
  );
  assert.ok(resetter.requests - resetter.posts > 0, 'so did a GET');
  assert.equal(lb.service('web').httpStats.retries, resetter.requests - 3);
});

test('http: a POST whose connect failed is sent to another backend (nothing was written)', async (t) => {
  const dead = await refusedPort();
  const good = await backend(t, 'good');
  const lb = await startLb(t, svc([addr(dead), addr(good.port)]));
  for (let i = 0; i < 4; i++) {
    const r = await lb.request('web', { method: 'POST', body: `n${i}` });
    assert.match(r.text(), /^good /);
  }
  assert.equal(good.posts, 4);
  const d = lb.service('web').backends.get(addr(dead));
  assert.ok(d && d.dialFailuresTotal >= 1);
});

test('http: request_timeout fires on a backend that accepts and never answers, and is not retried', async (t) => {
  const silent = await backend(t, 'silent', hold);
  const lb = await startLb(t, svc([addr(silent.port)], { request_timeout: '300ms' }));
  const t0 = Date.now();
  await assert.rejects(lb.request('web'), { code: 'LB_ERR_TIMEOUT' });
  const took = Date.now() - t0;
  assert.ok(took >= 290 && took < 3000, `took ${took}ms`);
  assert.equal(silent.requests, 1, 'a timeout is not retried');
  // The call's own timeout wins over the service's.
  const t1 = Date.now();
  await assert.rejects(lb.request('web', { timeout: 100 }), { code: 'LB_ERR_TIMEOUT' });
  assert.ok(Date.now() - t1 < 290);
  const st = httpOf(lb, silent.port);
  assert.equal(st?.failures, 2);
  assert.equal(st?.requests, 2);
  // The caller's signal aborts too.
  const ctl = new AbortController();
  const p = lb.request('web', { signal: ctl.signal });
  await waitFor(() => silent.requests === 3, 3000, 'the third request');
  ctl.abort();
  await assert.rejects(p, { code: 'LB_ERR_ABORTED' });
  assert.equal(lb.service('web').backends.get(addr(silent.port))?.active, 0, 'slots released');
});

test('http: HTTP/2 to a TLS backend that offers h2 (one session carries every request)', async (t) => {
  const pki = makePki(t);
  const server = createSecureServer({
    cert: pki.server.cert,
    key: pki.server.key,
    allowHTTP1: false,
  });
  let sessions = 0;
  server.on('session', () => sessions++);
  server.on('stream', (stream, headers) => {
    stream.respond({ ':status': 200 });
    stream.end(`h2 ${headers[':authority']} ${headers[':path']}`);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const port = (server.address() as { port: number }).port;
  const lb = await startLb(
    t,
    // A warm pool too: its TLS sockets offered no ALPN, so requests dial fresh for h2.
    svc([addr(port)], {
      backend_tls: { ca: pki.ca.certFile, servername: 'backend.test' },
      pool: { min_idle: 1 },
    }),
  );
  assert.equal((await lb.request('web', { path: '/first' })).text(), `h2 127.0.0.1:${port} /first`);
  // Once the session is up, concurrent requests are streams on it.
  const got = await Promise.all(
    Array.from({ length: 5 }, (_, i) => lb.request('web', { path: `/p${i}` })),
  );
  assert.deepEqual(
    got.map((r) => r.text()),
    Array.from({ length: 5 }, (_, i) => `h2 127.0.0.1:${port} /p${i}`),
  );
  assert.equal(sessions, 1);
  const res = await undiciFetch('https://api.example/x', { dispatcher: lb.dispatcher('web') });
  assert.equal(await res.text(), 'h2 api.example /x');
});

test('http: the statistics add up to the requests made (/api/services and /metrics)', async (t) => {
  const ok = await backend(t, 'ok');
  const broken = await backend(t, 'broken', (_req, res) => {
    res.statusCode = 503;
    res.end('no');
  });
  const dead = await refusedPort();
  const lb = await startLb(t, svc([addr(ok.port), addr(broken.port), addr(dead)]));
  const statuses: number[] = [];
  for (let i = 0; i < 30; i++) statuses.push((await lb.request('web')).statusCode);
  const s = lb.service('web');
  const view = serviceView(s);
  let requests = 0;
  let successes = 0;
  let failures = 0;
  for (const b of view.backends) {
    assert.ok(b.http, b.address);
    assert.equal(b.http.requests, b.http.successes + b.http.failures, b.address);
    assert.equal(b.http.latency.count, b.http.requests);
    requests += b.http.requests;
    successes += b.http.successes;
    failures += b.http.failures;
  }
  assert.equal(requests, 30 + view.httpRetries, 'every call, plus every retry');
  assert.equal(successes, statuses.filter((x) => x < 500).length);
  assert.equal(
    failures,
    statuses.filter((x) => x >= 500).length + view.httpRetries,
    'each 5xx, and each failed connect (retried)',
  );
  assert.equal(
    view.backends.find((b) => b.address === addr(ok.port))?.http?.successes,
    ok.requests,
  );
  assert.equal(
    view.backends.find((b) => b.address === addr(broken.port))?.http?.failures,
    broken.requests,
  );
  // Apart from sessions: no session was counted for these requests.
  assert.equal(
    view.backends.reduce((n, b) => n + b.sessionsTotal, 0),
    0,
  );
  const text = await createRegistry(lb).metrics();
  const sample = (name: string): number =>
    text
      .split('\n')
      .filter((l) => l.startsWith(name))
      .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
  assert.equal(sample('blitz_lb_http_requests_total{'), requests);
  assert.equal(sample('blitz_lb_http_request_outcomes_total{'), requests);
  assert.equal(sample('blitz_lb_http_request_seconds_count{'), requests);
  assert.equal(sample('blitz_lb_http_retries_total{'), view.httpRetries);
});

test('http: passive_http_5xx = true takes a backend answering 5xx out after fall failures', async (t) => {
  const ok = await backend(t, 'ok');
  const broken = await backend(t, 'broken', (_req, res) => {
    res.statusCode = 500;
    res.end('no');
  });
  const lb = await startLb(
    t,
    svc([addr(ok.port), addr(broken.port)], {
      passive_http_5xx: true,
      health: { kind: 'none', fall: 2, interval: '1m' },
    }),
  );
  for (let i = 0; i < 10; i++) await lb.request('web');
  assert.equal(broken.requests, 2, 'down after its second 5xx');
  assert.equal(lb.service('web').backends.get(addr(broken.port))?.healthy, false);
  assert.equal(lb.service('web').backends.get(addr(broken.port))?.dialFailuresTotal, 0);

  // Off (the default): 5xx answers are the caller's business.
  const lb2 = await startLb(
    t,
    svc([addr(ok.port), addr(broken.port)], { health: { kind: 'none', fall: 2 } }),
  );
  for (let i = 0; i < 10; i++) await lb2.request('web');
  assert.equal(lb2.service('web').backends.get(addr(broken.port))?.healthy, true);
});

test('http: fetch(url, { dispatcher }) and undici.request work, with the URL host as Host', async (t) => {
  const a = await backend(t, 'a');
  const b = await backend(t, 'b');
  const lb = await startLb(t, svc([addr(a.port), addr(b.port)]));
  const d = lb.dispatcher('web');
  assert.equal(lb.dispatcher('web'), d, 'one dispatcher per service');
  const names: string[] = [];
  for (let i = 0; i < 2; i++) {
    const res = await undiciFetch('http://api.internal/x', { dispatcher: d });
    assert.equal(res.status, 200);
    names.push(await res.text());
  }
  // Node's own fetch takes it too.
  const res = await fetch('http://api.internal:8080/y', {
    method: 'POST',
    body: 'hello',
    dispatcher: d,
    // Node 24's fetch types name its bundled undici 7's Dispatcher; undici 6's works at run time.
  } as unknown as RequestInit);
  names.push(await res.text());
  const r = await undiciRequest('http://other.internal/z', { dispatcher: d });
  assert.equal(r.statusCode, 200);
  names.push(await r.body.text());
  assert.deepEqual(names, [
    'a api.internal',
    'b api.internal',
    'a api.internal:8080',
    'b other.internal',
  ]);
  assert.equal(a.posts, 1);
  // An explicit Host is left alone.
  const h = await undiciRequest('http://x.internal/', { dispatcher: d, headers: { host: 'mine' } });
  assert.match(await h.body.text(), / mine$/);
});

test('http: a drained backend gets no new requests at once; the one under way on it finishes', async (t) => {
  const a = await backend(t, 'a', (req, res, c) =>
    req.url === '/hold' ? hold(req, res, c) : answer(req, res, c),
  );
  const b = await backend(t, 'b');
  const lb = await startLb(t, svc([addr(a.port), addr(b.port)]));
  const held = lb.request('web', { path: '/hold' });
  await waitFor(() => a.held.length === 1, 3000, 'the held request on a');
  const before = a.requests;
  lb.drainBackend('web', addr(a.port));
  const answers: string[] = [];
  for (let i = 0; i < 10; i++) answers.push((await lb.request('web')).text());
  assert.deepEqual(tally(answers), { b: 10 });
  assert.equal(a.requests, before);
  a.held[0]?.end('finished');
  assert.equal((await held).text(), 'finished');
  lb.enableBackend('web', addr(a.port));
  const back: string[] = [];
  for (let i = 0; i < 4; i++) back.push((await lb.request('web')).text());
  assert.ok(tally(back).a, 'back in rotation after enable');
  // Disabled: its requests under way are cut, as its sessions are; an idempotent one goes to b.
  const held2 = a.held.length;
  const cut = [lb.request('web', { path: '/hold' }), lb.request('web', { path: '/hold' })];
  await waitFor(() => a.held.length === held2 + 1, 3000, 'a second held request on a');
  lb.disableBackend('web', addr(a.port));
  const texts = (await Promise.all(cut)).map((r) => r.text());
  assert.deepEqual(tally(texts), { b: 2 });
});

test('http: no backend, every connect failing, a closed balancer: LB_ERR_* codes', async (t) => {
  const dead = await refusedPort();
  const lb = await startLb(t, svc([addr(dead)], { max_retries: 2, all_down: 'refuse' }));
  const err = await lb.request('web').catch((e) => e);
  assert.equal(err.code, 'LB_ERR_DIAL');
  assert.equal(err.attempts.length, 3);
  await assert.rejects(lb.request('web', { path: 'no-slash' }), {
    code: 'LB_ERR_INVALID_ARGUMENT',
  });
  assert.throws(() => lb.request('nope'), { code: 'LB_ERR_UNKNOWN_SERVICE' });
  lb.drainBackend('web', addr(dead));
  await assert.rejects(lb.request('web'), { code: 'LB_ERR_NO_BACKEND' });
  await lb.close(0);
  await assert.rejects(lb.request('web'), { code: 'LB_ERR_STATE' });
});

test('http: request_timeout is validated, shown by check and applied by a reload', async (t) => {
  assert.throws(
    () =>
      parseConfig(svc(['127.0.0.1:1'], { request_timeout: 'soon' }), {
        allowEphemeralListen: true,
      }),
    /services\.web\.request_timeout: /,
  );
  assert.throws(
    () =>
      parseConfig(svc(['127.0.0.1:1'], { passive_http_5xx: 'yes' }), {
        allowEphemeralListen: true,
      }),
    /services\.web\.passive_http_5xx: /,
  );
  const file = tempConfig(
    t,
    '[services.api]\nlisten = "127.0.0.1:8080"\nbackends = ["127.0.0.1:9001"]\nrequest_timeout = "2s"\npassive_http_5xx = true\n',
  );
  const ok = runCli(['check', '--config', file]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /http requests: request_timeout 2s, passive_http_5xx on/);
  writeFileSync(file, readFileSync(file, 'utf8').replace('"2s"', '"0ms"'));
  const bad = runCli(['check', '--config', file]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /config\.toml: services\.api\.request_timeout: must be 1ms-/);
  const silent = await backend(t, 'silent', hold);
  const lb = await startLb(t, svc([addr(silent.port)], { request_timeout: '5s' }));
  await lb.reload(
    parseConfig(svc([addr(silent.port)], { request_timeout: '150ms' }), {
      allowEphemeralListen: true,
    }),
  );
  const t0 = Date.now();
  await assert.rejects(lb.request('web'), { code: 'LB_ERR_TIMEOUT' });
  assert.ok(Date.now() - t0 < 2000);
});

test('http: the README example runs: three backends, a request, status and body, a health check, cleanup', async (t) => {
  const ports = [
    (await backend(t, 'a')).port,
    (await backend(t, 'b')).port,
    (await backend(t, 'c')).port,
  ];
  const answers = await main(ports);
  assert.equal(answers.length, 4);
  assert.deepEqual(answers.map((a) => a.split(' ').slice(0, 2).join(' ')).sort(), [
    '200 a',
    '200 b',
    '200 c',
    '200 c',
  ]);
});

test('http: close lets a request under way finish, and cuts it past the deadline', async (t) => {
  const a = await backend(t, 'a', hold);
  const lb = await startLb(t, svc([addr(a.port)]));
  const first = lb.request('web');
  await waitFor(() => a.held.length === 1, 3000, 'the held request');
  const closing = lb.close(5000);
  a.held[0]?.end('done');
  assert.equal((await first).text(), 'done');
  await closing;

  const lb2 = await startLb(t, svc([addr(a.port)]));
  const cut = lb2.request('web', { method: 'POST', body: 'x' });
  await waitFor(() => a.held.length === 2, 3000, 'the second held request');
  const t0 = Date.now();
  await lb2.close(100);
  await assert.rejects(cut, { code: 'UND_ERR_DESTROYED' });
  assert.ok(Date.now() - t0 < 3000, 'cut at the deadline, not at request_timeout');
});
