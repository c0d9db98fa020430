import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import {
  addr,
  bannerServer,
  blackhole,
  echoServer,
  ended,
  fdCount,
  httpGet,
  httpServer,
  openClient,
  readAll,
  readBytes,
  refusedPort,
  scriptedServer,
  sha256,
  startLb,
  svc,
  waitFor,
} from './helpers/servers.js';

test('echo through the balancer', async (t) => {
  const be = await echoServer(t);
  const lb = await startLb(t, svc([addr(be)]));
  const c = await openClient(lb.address('web').port);
  c.end('hello, world');
  assert.equal((await readAll(c)).toString(), 'hello, world');
  c.destroy();
});

test('HTTP across three backends: an even share', async (t) => {
  const ports = [await httpServer(t, 'a'), await httpServer(t, 'b'), await httpServer(t, 'c')];
  const lb = await startLb(t, svc(ports.map(addr)));
  const port = lb.address('web').port;
  const counts = new Map<string, number>();
  for (let i = 0; i < 30; i++) {
    const body = await httpGet(port);
    counts.set(body, (counts.get(body) ?? 0) + 1);
  }
  assert.deepEqual(Object.fromEntries(counts), { a: 10, b: 10, c: 10 });
});

test('a server-first banner reaches the client before it sends anything', async (t) => {
  const be = await bannerServer(t, '220 smtp.example ESMTP ready\r\n');
  const lb = await startLb(t, svc([addr(be)]));
  const c = await openClient(lb.address('web').port);
  const got = await readBytes(c, 30);
  assert.equal(got.toString(), '220 smtp.example ESMTP ready\r\n');
  c.destroy();
});

test('64 MiB each way arrive intact (SHA-256), with backpressure', async (t) => {
  const size = 64 * 1024 * 1024;
  const up = randomBytes(size);
  const down = randomBytes(size);
  let upHash = '';
  const be = await scriptedServer(t, (s) => {
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('end', () => {
      upHash = sha256(Buffer.concat(chunks));
      s.end();
    });
    s.write(down);
  });
  const lb = await startLb(t, svc([addr(be)]));
  const c = await openClient(lb.address('web').port);
  const reading = readAll(c);
  c.end(up);
  const got = await reading;
  assert.equal(got.length, size);
  assert.equal(sha256(got), sha256(down));
  await waitFor(() => upHash !== '', 5000, 'backend to read all');
  assert.equal(upHash, sha256(up));
  c.destroy();
});

test('half-close from the client: the reply still flows back after the FIN', async (t) => {
  const be = await scriptedServer(t, (s) => {
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    // Answers only after the client's FIN: proves the FIN was carried and the return path left open.
    s.on('end', () => s.end(`got ${Buffer.concat(chunks).toString()}`));
  });
  const lb = await startLb(t, svc([addr(be)]));
  const c = await openClient(lb.address('web').port);
  c.end('question');
  assert.equal((await readAll(c)).toString(), 'got question');
  c.destroy();
});

test('half-close from the backend: the client can still send after the FIN', async (t) => {
  let received = '';
  const be = await scriptedServer(t, (s) => {
    s.end('bye-from-backend');
    s.on('data', (d: Buffer) => {
      received += d.toString();
    });
  });
  const lb = await startLb(t, svc([addr(be)]));
  const c = await openClient(lb.address('web').port);
  assert.equal((await readAll(c)).toString(), 'bye-from-backend');
  c.end('late words');
  await waitFor(() => received === 'late words', 3000, 'late bytes at backend');
  c.destroy();
});

test('client RST: the backend socket is closed', async (t) => {
  let backendSock: Socket | undefined;
  const be = await scriptedServer(t, (s) => {
    backendSock = s;
    s.resume();
  });
  const lb = await startLb(t, svc([addr(be)]));
  const c = await openClient(lb.address('web').port);
  c.write('x');
  await waitFor(() => backendSock !== undefined, 3000, 'backend accept');
  const closed = new Promise((r) => (backendSock as Socket).once('close', r));
  c.resetAndDestroy();
  await closed;
  await waitFor(() => lb.service('web').activeSessions === 0, 3000, 'session end');
});

test('backend RST: the client socket is closed with a reset', async (t) => {
  const be = await scriptedServer(t, (s) => {
    s.once('data', () => s.resetAndDestroy());
  });
  const lb = await startLb(t, svc([addr(be)]));
  const c = await openClient(lb.address('web').port);
  const err = once(c, 'error');
  c.write('trigger');
  const [e] = (await err) as [NodeJS.ErrnoException];
  assert.equal(e.code, 'ECONNRESET');
});

test('a refused first backend: served by the next', async (t) => {
  const dead = await refusedPort();
  const live = await httpServer(t, 'live');
  const lb = await startLb(t, svc([addr(dead), addr(live)]));
  const port = lb.address('web').port;
  for (let i = 0; i < 4; i++) assert.equal(await httpGet(port), 'live');
  const deadB = lb.service('web').backends.get(addr(dead));
  assert.ok(
    deadB && deadB.dialFailuresTotal >= 1,
    'the refusal is recorded against the dead backend',
  );
  assert.ok(lb.service('web').counters.retries >= 1);
});

test('a blackholed dial fails over after connect_timeout', async (t) => {
  const hole = await blackhole(t);
  const live = await httpServer(t, 'live');
  const lb = await startLb(t, svc([addr(hole), addr(live)], { connect_timeout: '300ms' }));
  const start = Date.now();
  assert.equal(await httpGet(lb.address('web').port), 'live');
  const took = Date.now() - start;
  assert.ok(took >= 280, `failover came after the deadline, not before (${took}ms)`);
  assert.ok(took < 2000, `failover came promptly after the deadline (${took}ms)`);
  const b = lb.service('web').backends.get(addr(hole));
  assert.equal(b?.dialFailuresTotal, 1);
});

test('every attempt failing closes the client promptly', async (t) => {
  const a = await refusedPort();
  const b = await refusedPort();
  const lb = await startLb(t, svc([addr(a), addr(b)], { max_retries: 2, retry_delay: '5ms' }));
  const c = await openClient(lb.address('web').port);
  c.resume();
  await once(c, 'end');
  const s = lb.service('web');
  assert.equal(s.counters.connectFailed, 1);
  assert.equal(s.counters.retries, 2);
  assert.equal(
    (s.backends.get(addr(a))?.dialFailuresTotal ?? 0) +
      (s.backends.get(addr(b))?.dialFailuresTotal ?? 0),
    3,
  );
});

test('hostnames are resolved at dial time (localhost)', async (t) => {
  const be = await httpServer(t, 'by-name');
  const lb = await startLb(t, svc([`localhost:${be}`]));
  assert.equal(await httpGet(lb.address('web').port), 'by-name');
});

test('idle_timeout closes both legs', async (t) => {
  let backendSock: Socket | undefined;
  const be = await scriptedServer(t, (s) => {
    backendSock = s;
    s.resume();
  });
  const lb = await startLb(t, svc([addr(be)], { idle_timeout: '200ms' }));
  const c = await openClient(lb.address('web').port);
  c.write('x');
  c.resume();
  await waitFor(() => backendSock !== undefined, 3000, 'backend accept');
  const start = Date.now();
  // Both peers see the balancer's FIN (they are half-open capable, so 'end' is the signal).
  await Promise.all([once(c, 'end'), once(backendSock as Socket, 'end')]);
  assert.ok(Date.now() - start >= 150, 'not before the deadline');
});

test('max_connections: clients beyond the limit are refused at once', async (t) => {
  const be = await echoServer(t);
  const lb = await startLb(t, svc([addr(be)], { max_connections: 2 }));
  const port = lb.address('web').port;
  const a = await openClient(port);
  const b = await openClient(port);
  a.write('1');
  b.write('2');
  await readBytes(a, 1);
  await readBytes(b, 1);
  const c = await openClient(port);
  c.resume();
  await once(c, 'end');
  assert.equal(lb.service('web').counters.refusedLimit, 1);
  a.destroy();
  b.destroy();
  await waitFor(() => lb.service('web').activeSessions === 0, 3000, 'sessions to end');
  const d = await openClient(port);
  d.end('again');
  assert.equal((await readAll(d)).toString(), 'again');
  d.destroy();
});

test('after 2,000 sessions the open descriptors return to baseline', async (t) => {
  const be = await echoServer(t);
  const lb = await startLb(t, svc([addr(be)]));
  const port = lb.address('web').port;
  const baseline = fdCount();
  const batch = 50;
  for (let i = 0; i < 2000; i += batch) {
    await Promise.all(
      Array.from({ length: batch }, async () => {
        const c = await openClient(port);
        c.end('ping');
        const got = await readAll(c);
        assert.equal(got.toString(), 'ping');
        c.destroy();
      }),
    );
  }
  await waitFor(() => lb.service('web').activeSessions === 0, 5000, 'sessions to end');
  await waitFor(
    () => fdCount() <= baseline,
    5000,
    `fd count back to ${baseline} (now ${fdCount()})`,
  );
  assert.equal(lb.service('web').counters.accepted, 2000);
});

test('close(0) during a graceful close (a second signal) ends the open sessions now', async (t) => {
  const be = await echoServer(t);
  const lb = await startLb(t, svc([addr(be)]));
  const c = await openClient(lb.address('web').port);
  c.write('x');
  await readBytes(c, 1);
  const graceful = lb.close(60_000);
  await waitFor(() => lb.service('web').activeSessions === 1, 1000, 'the session to stay open');
  const cut = ended(c);
  const start = Date.now();
  await lb.close(0);
  await graceful;
  await cut;
  assert.ok(Date.now() - start < 2000, 'not left to the 60 s deadline');
});

test('listeners shared by all sessions: 100 concurrent sessions each get their own bytes back, none crossed', async (t) => {
  const be = await echoServer(t);
  const lb = await startLb(t, svc([addr(be)]));
  const port = lb.address('web').port;
  await Promise.all(
    Array.from({ length: 100 }, async (_, i) => {
      const c = await openClient(port);
      const mine = Buffer.from(`${i}:`.padEnd(4096 + i, String.fromCharCode(65 + (i % 26))));
      c.end(mine);
      const got = await readAll(c);
      assert.equal(sha256(got), sha256(mine), `session ${i}`);
      c.destroy();
    }),
  );
});
