import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import type { Backend } from '../src/backend/backend.js';
import { runCheck } from '../src/check.js';
import { ManualClock } from './helpers/backends.js';
import { tempConfig } from './helpers/cli.js';
import { captured } from './helpers/discovery.js';
import {
  addr,
  echoServer,
  fdCount,
  openClient,
  readAll,
  readBytes,
  refusedPort,
  scriptedServer,
  startLb,
  svc,
  waitFor,
} from './helpers/servers.js';

/** An echo backend that keeps its accepted sockets, so a test can close them under the pool. */
async function trackedEcho(t: Parameters<typeof echoServer>[0]) {
  const sockets: Socket[] = [];
  let accepted = 0;
  const port = await scriptedServer(t, (s) => {
    accepted++;
    sockets.push(s);
    s.pipe(s);
  });
  return { port, sockets, accepted: () => accepted };
}

test('pool: min_idle sockets are pre-opened to each backend at start', async (t) => {
  const a = await trackedEcho(t);
  const b = await trackedEcho(t);
  const lb = await startLb(t, svc([addr(a.port), addr(b.port)], { pool: { min_idle: 2 } }));
  const s = lb.service('web');
  await waitFor(() => s.pool.idleCount === 4, 3000, 'pool to fill');
  // The balancer's side connects before the backend's 'connection' event runs: wait for both.
  await waitFor(() => a.accepted() + b.accepted() >= 4, 3000, 'the backends to accept');
  assert.equal(a.accepted(), 2);
  assert.equal(b.accepted(), 2);
  const c = await openClient(lb.address('web').port);
  c.end('warm');
  assert.equal((await readAll(c)).toString(), 'warm');
  c.destroy();
  assert.equal(s.pool.counters.hits, 1);
  assert.equal(s.pool.counters.misses, 0);
  assert.equal(s.stats.connectLatency.hit.count, 1);
});

test('pool: a socket the backend closed while idle is evicted, never handed out; the client is served', async (t) => {
  const be = await trackedEcho(t);
  const lb = await startLb(t, svc([addr(be.port)], { pool: { min_idle: 2, max_idle: 2 } }));
  const s = lb.service('web');
  await waitFor(() => s.pool.idleCount === 2, 3000, 'pool to fill');
  const stale = be.sockets.splice(0);
  for (const x of stale) x.end();
  await waitFor(() => s.pool.counters.evictions.closed === 2, 3000, 'evictions');
  const c = await openClient(lb.address('web').port);
  c.end('after eviction');
  assert.equal((await readAll(c)).toString(), 'after eviction');
  c.destroy();
  // The closed sockets never carried a byte: the session ran on a live one.
  for (const x of stale) assert.equal(x.bytesRead, 0);
  assert.equal(s.counters.connectFailed, 0);
});

test('pool: a warm socket that dies after checkout but before any byte is replaced by a fresh dial', async (t) => {
  const be = await trackedEcho(t);
  const lb = await startLb(t, svc([addr(be.port)], { pool: { min_idle: 1, max_idle: 1 } }));
  const s = lb.service('web');
  await waitFor(() => s.pool.idleCount === 1, 3000, 'pool to fill');
  const c = await openClient(lb.address('web').port);
  await waitFor(() => s.pool.counters.hits === 1 && s.activeSessions === 1, 3000, 'checkout');
  // The backend closes every socket it has, including the one just handed to our client.
  for (const x of be.sockets.splice(0)) x.end();
  await waitFor(() => s.counters.retries === 1, 3000, 'the fresh redial');
  c.end('still served');
  assert.equal((await readAll(c)).toString(), 'still served');
  c.destroy();
  assert.equal(s.counters.connectFailed, 0);
});

test('pool: a server-first greeting sent long before checkout reaches the client first, byte for byte', async (t) => {
  let n = 0;
  const be = await scriptedServer(t, (sock) => {
    sock.write(`220 conn-${++n} ready\r\n`);
    sock.pipe(sock);
  });
  const lb = await startLb(t, svc([addr(be)], { pool: { min_idle: 1, max_idle: 1 } }));
  const s = lb.service('web');
  await waitFor(() => s.pool.idleCount === 1, 3000, 'pool to fill');
  // The greeting must wait in the pool a while: this delay is the behaviour under test, not a sync.
  await new Promise((r) => setTimeout(r, 1000));
  const c = await openClient(lb.address('web').port);
  const greeting = await readBytes(c, '220 conn-1 ready\r\n'.length);
  assert.equal(greeting.toString(), '220 conn-1 ready\r\n');
  c.end('ping');
  assert.equal((await readAll(c)).toString(), 'ping');
  c.destroy();
  assert.equal(s.pool.counters.hits, 1);
});

test('pool: idle_ttl reaps old idle sockets and replaces them', async (t) => {
  const be = await trackedEcho(t);
  const lb = await startLb(
    t,
    svc([addr(be.port)], { pool: { min_idle: 2, max_idle: 2, idle_ttl: '200ms' } }),
  );
  const s = lb.service('web');
  await waitFor(() => s.pool.counters.evictions.expired >= 2, 3000, 'expiry');
  await waitFor(() => s.pool.idleCount === 2 && be.accepted() >= 4, 3000, 'replacement');
  // The manual hook reaps only what is past idle_ttl: the fresh replacements stay.
  const expired = s.pool.counters.evictions.expired;
  lb.cleanupConnections();
  assert.equal(s.pool.counters.evictions.expired, expired);
  assert.equal(s.pool.idleCount, 2);
});

test('pool: a refusing backend gets a bounded number of refill attempts in 2 s (exponential backoff)', async (t) => {
  const dead = await refusedPort();
  const lb = await startLb(
    t,
    svc([addr(dead)], {
      pool: { min_idle: 2 },
      retry_delay: '100ms',
      health: { kind: 'none', fall: 1000 },
    }),
  );
  const s = lb.service('web');
  await waitFor(() => s.pool.counters.refillFailures >= 1, 2000, 'first refill failure');
  const start = s.pool.counters.refillFailures;
  await new Promise((r) => setTimeout(r, 2000));
  const attempts = s.pool.counters.refillFailures - start;
  // 100, 200, 400, 800 ms backoff: about 4 more attempts in 2 s; a hot loop would make thousands.
  assert.ok(attempts >= 2 && attempts <= 6, `refill attempts in 2 s: ${attempts}`);
  assert.equal(s.pool.idleCount, 0);
});

test('pool: with min_idle = 0 nothing is pre-opened', async (t) => {
  const be = await trackedEcho(t);
  const lb = await startLb(t, svc([addr(be.port)], { pool: { min_idle: 0 } }));
  const c = await openClient(lb.address('web').port);
  c.end('cold');
  assert.equal((await readAll(c)).toString(), 'cold');
  c.destroy();
  assert.equal(be.accepted(), 1, 'only the session itself connected');
  assert.equal(lb.service('web').pool.idleCount, 0);
  assert.equal(lb.service('web').stats.connectLatency.miss.count, 1);
});

test('pool: a down backend keeps no pool; it refills when the backend is back', async (t) => {
  const be = await trackedEcho(t);
  const lb = await startLb(t, svc([addr(be.port)], { pool: { min_idle: 2 } }));
  const s = lb.service('web');
  await waitFor(() => s.pool.idleCount === 2, 3000, 'pool to fill');
  const b = s.backends.all[0];
  assert.ok(b);
  s.backends.markDown(b, 'test');
  assert.equal(s.pool.idleCount, 0);
  assert.equal(s.pool.counters.evictions['backend-down'], 2);
  s.backends.markUp(b);
  await waitFor(() => s.pool.idleCount === 2, 3000, 'refill after up');
});

test('pool: 1,000 sessions through a warm pool leak no descriptors', async (t) => {
  const be = await echoServer(t);
  const lb = await startLb(t, svc([addr(be)], { pool: { min_idle: 2, max_idle: 2 } }));
  const s = lb.service('web');
  const port = lb.address('web').port;
  await waitFor(() => s.pool.idleCount === 2, 3000, 'pool to fill');
  const baseline = fdCount();
  for (let i = 0; i < 1000; i += 20) {
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        const c = await openClient(port);
        c.end('x');
        assert.equal((await readAll(c)).toString(), 'x');
        c.destroy();
      }),
    );
  }
  await waitFor(
    () => s.activeSessions === 0 && s.pool.idleCount === 2,
    5000,
    'sessions to end, pool to refill',
  );
  await waitFor(() => fdCount() <= baseline, 5000, `fd count back to ${baseline}`);
  assert.ok(s.pool.counters.hits > 0, 'the pool served sessions');
  assert.equal(s.pool.counters.hits + s.pool.counters.misses, 1000);
});

test('pool: shutdown closes idle sockets at once', async (t) => {
  const be = await trackedEcho(t);
  const lb = await startLb(t, svc([addr(be.port)], { pool: { min_idle: 2 } }));
  const s = lb.service('web');
  await waitFor(() => s.pool.idleCount === 2, 3000, 'pool to fill');
  await lb.close(1000);
  assert.equal(s.pool.idleCount, 0);
  await Promise.all(be.sockets.map((x) => (x.readableEnded ? Promise.resolve() : once(x, 'end'))));
});

test('pool: idle_ttl is measured on the clock passed in, so moving it ages idle sockets', async (t) => {
  const be = await trackedEcho(t);
  const clock = new ManualClock();
  const lb = await startLb(
    t,
    svc([addr(be.port)], { pool: { min_idle: 2, max_idle: 2, idle_ttl: '1h' } }),
    { clock },
  );
  const s = lb.service('web');
  await waitFor(() => s.pool.idleCount === 2, 3000, 'pool to fill');
  lb.cleanupConnections();
  assert.equal(s.pool.counters.evictions.expired, 0, 'nothing is an hour old yet');
  clock.advance(3_600_001);
  lb.cleanupConnections();
  assert.equal(s.pool.counters.evictions.expired, 2, 'both idle sockets past idle_ttl');
  await waitFor(() => s.pool.idleCount === 2 && be.accepted() === 4, 3000, 'replacement');
});

test('pool: take() refills after the taker is served, not inside it, and takes in one tick share one refill', async (t) => {
  const be = await trackedEcho(t);
  const lb = await startLb(t, svc([addr(be.port)], { pool: { min_idle: 3, max_idle: 3 } }));
  const s = lb.service('web');
  await waitFor(() => s.pool.idleCount === 3, 3000, 'pool to fill');
  const b = s.backends.all[0] as NonNullable<(typeof s.backends.all)[0]>;
  const taken = [s.pool.take(b), s.pool.take(b)];
  assert.ok(taken[0] && taken[1], 'two warm sockets');
  // Nothing dialled inside take(): the taker's own work comes first.
  assert.equal(s.pool.connectingFor(b), 0);
  await new Promise((r) => setImmediate(r));
  // One refill for both takes, opening what both left.
  assert.equal(s.pool.connectingFor(b) + s.pool.idleFor(b), 3);
  await waitFor(() => s.pool.idleFor(b) === 3, 3000, 'refilled');
  assert.equal(be.accepted(), 5);
  for (const ps of taken) {
    if (!ps) continue;
    s.pool.detach(ps);
    ps.socket.destroy();
  }
});

test("pool: take() leaves a socket's FIN to its taker, so a session's 'end' listener joins only Node's own", async (t) => {
  const be = await trackedEcho(t);
  const lb = await startLb(t, svc([addr(be.port)], { pool: { min_idle: 1, max_idle: 1 } }));
  const s = lb.service('web');
  await waitFor(() => s.pool.idleCount === 1, 3000, 'pool to fill');
  const b = s.backends.all[0] as NonNullable<(typeof s.backends.all)[0]>;
  const ps = s.pool.take(b);
  assert.ok(ps, 'a warm socket');
  // Node's own 'end' listener stays; the pool's is gone before the taker adds one. A third
  // listener pushed onto Node's two-element array grows it to 19 slots for the session's life.
  assert.equal(ps.socket.listenerCount('end'), 1);
  // Its bytes and errors are still the pool's until the taker detaches it.
  assert.equal(ps.socket.listenerCount('data'), 1);
  s.pool.detach(ps);
  assert.equal(ps.socket.listenerCount('data'), 0);
  ps.socket.destroy();
});

test('pool: a backend that closes idle sockets after ~1.2 s (an accept-time timeout): the pool learns it, says so once, retires sockets before it and never hands one out late', async (t) => {
  const be = await scriptedServer(t, (s) => {
    // MariaDB's connect_timeout in small: a socket nobody spoke on is closed at 1.2 s.
    const timer = setTimeout(() => s.end(), 1200);
    s.once('data', (d) => {
      clearTimeout(timer);
      s.end(d);
    });
  });
  const { logger, lines } = captured('warn');
  const lb = await startLb(t, svc([addr(be)], { pool: { min_idle: 2, max_idle: 2 } }), {
    logger,
  });
  const s = lb.service('web');
  const b = s.backends.all[0] as Backend;
  await waitFor(() => s.pool.lifetimeFor(b) > 0, 5000, 'a learned lifetime');
  const learned = s.pool.lifetimeFor(b);
  assert.ok(learned >= 1200 && learned < 1400, `learned ${learned} ms`);
  const closedThen = s.pool.counters.evictions.closed;
  // Two more generations: each retires at 900 ms (1200 less a quarter), before the backend's end.
  await waitFor(() => s.pool.counters.evictions.retired >= 4, 5000, 'retirements');
  assert.equal(s.pool.counters.evictions.closed, closedThen, 'no socket reached the backend’s end');
  assert.equal(s.pool.counters.earlyCloses.closed, 0, 'not a young death: no backoff');
  const said = lines.filter((l) => /closes idle connections after ~1[23]\d\d ms/.test(l.msg));
  assert.equal(said.length, 1, 'said once');
  assert.equal(said[0]?.retireAtMs, learned - learned / 4);
  // Clients arriving at any moment get a socket younger than the retirement age.
  for (let i = 0; i < 6; i++) {
    const c = await openClient(lb.address('web').port);
    c.end(`hello ${i}`);
    assert.equal((await readAll(c)).toString(), `hello ${i}`);
    c.destroy();
    // Spreads the clients over the sockets’ ages (the behaviour under test), not a sync.
    await new Promise((r) => setTimeout(r, 170));
  }
  assert.equal(s.counters.connectFailed, 0);
});

test('check: says what a pool is per backend with workers, and warns where a pooled socket or the greeting probe looks like an aborted login', (t) => {
  const file = tempConfig(
    t,
    `[process]
workers = 3
[services.db]
listen = "127.0.0.1:3307"
backends = ["127.0.0.1:3306"]
health = { kind = "mysql" }
[services.db2]
listen = "127.0.0.1:3308"
backends = ["127.0.0.1:3306"]
health = { kind = "mysql", user = "probe" }
pool = { min_idle = 0 }
[services.web]
listen = "127.0.0.1:8080"
backends = ["127.0.0.1:9001"]
`,
  );
  const r = runCheck(file);
  assert.equal(r.valid, true);
  assert.ok(
    r.summary.some((l) =>
      l.includes('pool min_idle 2 max_idle 10 (3 workers: 6-30 idle connections per backend)'),
    ),
    r.summary.join('\n'),
  );
  assert.deepEqual(
    r.warnings.map((w) => w.path),
    ['services.db.pool.min_idle', 'services.db.health.kind'],
  );
  assert.match(
    r.warnings[0]?.message ?? '',
    /^2 \(x3 workers\): MySQL and MariaDB count each pooled connection/,
  );
  assert.match(r.warnings[1]?.message ?? '', /set health\.user/);
});

test('pool: sockets are handed out oldest first, so a server that serves one connection at a time (in accept order) serves the client', async (t) => {
  // iperf3's way: the first accepted connection is served alone; the rest wait their turn.
  const queue: Socket[] = [];
  const serveNext = (): void => {
    const s = queue[0];
    if (!s) return;
    s.pipe(s);
    s.once('close', () => {
      queue.shift();
      serveNext();
    });
  };
  const be = await scriptedServer(t, (s) => {
    queue.push(s);
    if (queue.length === 1) serveNext();
  });
  const lb = await startLb(t, svc([addr(be)], { pool: { min_idle: 3, max_idle: 3 } }));
  const s = lb.service('web');
  await waitFor(() => s.pool.idleCount === 3 && queue.length === 3, 3000, 'pool to fill');
  const c = await openClient(lb.address('web').port);
  c.write('first');
  // Bounded: handed the wrong socket, the client would wait forever.
  const reply = await Promise.race([
    readBytes(c, 5),
    new Promise<Buffer>((_, reject) =>
      setTimeout(
        () =>
          reject(new Error('no echo in 3 s: the client got a socket the server does not serve')),
        3000,
      ).unref(),
    ),
  ]);
  assert.equal(reply.toString(), 'first');
  c.destroy();
  assert.equal(s.pool.counters.hits, 1);
});
