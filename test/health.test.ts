import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { Server } from 'node:net';
import { test } from 'node:test';
import type { Backend } from '../src/backend/backend.js';
import { Backend as BackendClass } from '../src/backend/backend.js';
import { httpProbe } from '../src/health/http-probe.js';
import { tcpProbe } from '../src/health/tcp-probe.js';
import { backendConfig } from './helpers/backends.js';
import {
  addr,
  blackhole,
  httpGet,
  httpServer,
  listen,
  openClient,
  refusedPort,
  startLb,
  svc,
  waitFor,
} from './helpers/servers.js';

function namedHttp(name: string, status = 200): HttpServer {
  return createHttpServer((req, res) => {
    req.resume();
    res.statusCode = req.url === '/health' ? status : 200;
    res.end(name);
  });
}

function backendAt(port: number): Backend {
  return new BackendClass(backendConfig(port));
}

test('health: a dead backend is down after the first probe at start (init-state up)', async (t) => {
  const live = await httpServer(t, 'live');
  const dead = await refusedPort();
  const lb = await startLb(
    t,
    svc([addr(dead), addr(live)], { health: { kind: 'tcp', interval: '10s', fall: 3 } }),
  );
  const s = lb.service('web');
  const deadB = s.backends.get(addr(dead)) as Backend;
  if (deadB.healthy) await once(s.backends, 'down');
  assert.equal(deadB.healthy, false);
  assert.match(deadB.downReason ?? '', /probe: ECONNREFUSED/);
  assert.equal(s.backends.get(addr(live))?.healthy, true);
});

test('health: killed backend is down after `fall` probes and gets no sessions; restarted, back after `rise`', async (t) => {
  const a = await listen(t, namedHttp('a') as unknown as Server);
  const bServer = namedHttp('b');
  const b = await listen(t, bServer as unknown as Server);
  const lb = await startLb(
    t,
    svc([addr(a), addr(b)], {
      health: { kind: 'tcp', interval: '100ms', timeout: '200ms', fall: 2, rise: 3 },
    }),
  );
  const s = lb.service('web');
  const bb = s.backends.get(addr(b)) as Backend;
  await waitFor(() => bb.lastCheck?.ok === true, 3000, 'first good probe');

  bServer.closeAllConnections();
  bServer.close();
  const [downB] = (await once(s.backends, 'down')) as [Backend];
  assert.equal(downB, bb);
  assert.equal(bb.consecutiveFailures, 2, 'down exactly at the fall-th failed probe');
  const port = lb.address('web').port;
  for (let i = 0; i < 6; i++) assert.equal(await httpGet(port), 'a');

  const again = namedHttp('b');
  again.listen(b, '127.0.0.1');
  t.after(() => {
    again.closeAllConnections();
    again.close();
  });
  await once(again, 'listening');
  const [upB] = (await once(s.backends, 'up')) as [Backend];
  assert.equal(upB, bb);
  assert.equal(bb.consecutiveSuccesses, 3, 'up exactly at the rise-th good probe');
  const seen = new Set<string>();
  for (let i = 0; i < 4; i++) seen.add(await httpGet(port));
  assert.deepEqual([...seen].sort(), ['a', 'b']);
});

test('health: an HTTP probe marks down on a 500', async (t) => {
  const bad = await listen(t, namedHttp('bad', 500) as unknown as Server);
  const r = await httpProbe(backendAt(bad), '/health', 1000);
  assert.deepEqual([r.ok, r.detail], [false, 'HTTP 500']);
  const good = await listen(t, namedHttp('good', 204) as unknown as Server);
  assert.equal((await httpProbe(backendAt(good), '/health', 1000)).ok, true);
  const redirect = await listen(t, namedHttp('moved', 302) as unknown as Server);
  assert.equal((await httpProbe(backendAt(redirect), '/health', 1000)).ok, true, '3xx is healthy');

  const lb = await startLb(
    t,
    svc([addr(bad), addr(good)], { health: { kind: 'http', path: '/health', interval: '100ms' } }),
  );
  const bb = lb.service('web').backends.get(addr(bad)) as Backend;
  if (bb.healthy) await once(lb.service('web').backends, 'down');
  assert.equal(bb.downReason, 'probe: HTTP 500');
});

test('health: an HTTP probe that gets no answer times out at health.timeout', async (t) => {
  const silent = createHttpServer(() => {
    /* never answers */
  });
  const port = await listen(t, silent as unknown as Server);
  t.after(() => silent.closeAllConnections());
  const start = Date.now();
  const r = await httpProbe(backendAt(port), '/', 300);
  const took = Date.now() - start;
  assert.deepEqual([r.ok, r.detail], [false, 'timeout 300ms']);
  assert.ok(took >= 290 && took < 1500, `took ${took}ms`);
});

test('health: a blackholed TCP probe times out at health.timeout', async (t) => {
  const hole = await blackhole(t);
  const start = Date.now();
  const r = await tcpProbe(backendAt(hole), 300);
  const took = Date.now() - start;
  assert.deepEqual([r.ok, r.detail], [false, 'connect timeout 300ms']);
  assert.ok(took >= 290 && took < 1500, `took ${took}ms`);
});

test('health: passive failures open the circuit (kind none); a half-open trial closes it', async (t) => {
  const live = await httpServer(t, 'live');
  const flaky = await refusedPort();
  const lb = await startLb(
    t,
    svc([addr(flaky), addr(live)], { health: { kind: 'none', interval: '300ms', fall: 2 } }),
  );
  const s = lb.service('web');
  const fb = s.backends.get(addr(flaky)) as Backend;
  const port = lb.address('web').port;
  const down = once(s.backends, 'down');
  while (fb.healthy)
    assert.equal(await httpGet(port), 'live', 'failed dials are retried on the live backend');
  await down;
  assert.equal(fb.dialFailuresTotal, 2);
  assert.match(fb.downReason ?? '', /^dial: ECONNREFUSED/);
  // Open circuit: no dial goes to it, until the trial.
  for (let i = 0; i < 4; i++) assert.equal(await httpGet(port), 'live');
  assert.equal(fb.dialFailuresTotal, 2);

  const revived = namedHttp('flaky');
  revived.listen(flaky, '127.0.0.1');
  await once(revived, 'listening');
  t.after(() => {
    revived.closeAllConnections();
    revived.close();
  });
  await waitFor(() => fb.halfOpen, 3000, 'half-open after the backoff');
  const bodies = new Set<string>();
  while (!fb.healthy) bodies.add(await httpGet(port));
  assert.ok(bodies.has('flaky'), 'the trial session was served by the revived backend');
  assert.equal(fb.healthy, true);
});

test('health: a failed half-open trial re-opens the circuit with a longer wait', async (t) => {
  const live = await httpServer(t, 'live');
  const dead = await refusedPort();
  const lb = await startLb(
    t,
    svc([addr(dead), addr(live)], { health: { kind: 'none', interval: '200ms', fall: 1 } }),
  );
  const s = lb.service('web');
  const db = s.backends.get(addr(dead)) as Backend;
  const port = lb.address('web').port;
  while (db.healthy) await httpGet(port);
  assert.equal(db.trialBackoffMs, 200);
  await waitFor(() => db.halfOpen, 3000, 'half-open');
  while (db.dialFailuresTotal < 2) assert.equal(await httpGet(port), 'live');
  assert.equal(db.halfOpen, false);
  assert.equal(db.healthy, false);
  assert.equal(db.trialBackoffMs, 400);
});

test('health: all down with try-all dials anyway and serves', async (t) => {
  // Health endpoints answer 500, but the service itself works: probes can be wrong.
  const a = await listen(t, namedHttp('a', 500) as unknown as Server);
  const lb = await startLb(
    t,
    svc([addr(a)], {
      all_down: 'try-all',
      health: { kind: 'http', path: '/health', interval: '5s' },
    }),
  );
  const s = lb.service('web');
  const ab = s.backends.get(addr(a)) as Backend;
  if (ab.healthy) await once(s.backends, 'down');
  assert.equal(await httpGet(lb.address('web').port), 'a');
});

test('health: all down with refuse closes the client at once', async (t) => {
  const a = await listen(t, namedHttp('a', 500) as unknown as Server);
  const lb = await startLb(
    t,
    svc([addr(a)], {
      all_down: 'refuse',
      health: { kind: 'http', path: '/health', interval: '5s' },
    }),
  );
  const s = lb.service('web');
  const ab = s.backends.get(addr(a)) as Backend;
  if (ab.healthy) await once(s.backends, 'down');
  const c = await openClient(lb.address('web').port);
  c.resume();
  await once(c, 'end');
  assert.equal(s.counters.refusedNoBackend, 1);
  c.destroy();
});

test('health: performHealthCheck runs a round now', async (t) => {
  const a = await listen(t, namedHttp('a') as unknown as Server);
  const lb = await startLb(t, svc([addr(a)], { health: { kind: 'tcp', interval: '1h' } }));
  const b = lb.service('web').backends.get(addr(a)) as Backend;
  await waitFor(() => b.lastCheck !== null, 3000, 'first probe');
  const first = b.lastCheck?.at ?? 0;
  // The next probe must be at a later wall-clock millisecond to be told apart.
  await waitFor(() => Date.now() > first, 1000, 'the clock to move past the first probe');
  await lb.performHealthCheck();
  assert.ok((b.lastCheck?.at ?? 0) > first);
});
