// [cluster] redis and the accept path: a TLS-terminating service takes its
// shared per-source lease before the handshake without waiting on Redis; a
// client that leaves while the cluster gate holds it leaks nothing; a Redis
// that never answers, or refuses the password, never stops or slows a client.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { waitForPort } from '../bench/lib/net.js';
import { runBalancer, sample } from './helpers/cluster.js';
import { makeIssuer } from './helpers/issuer.js';
import { needRedis, startRedis } from './helpers/redis-server.js';
import {
  addr,
  bannerServer,
  echoServer,
  listen,
  readAll,
  refusedPort,
  startLb,
  svc,
  waitFor,
} from './helpers/servers.js';

function redisCli(port: number, ...args: string[]): string {
  return spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8' }).stdout.trim();
}

/** A TLS session from `from` through an echo backend: true when served, false when closed first. */
async function tlsTry(port: number, from: string, ca: Buffer, held: Socket[]): Promise<boolean> {
  const raw = connect({ port, host: '127.0.0.1', localAddress: from });
  raw.on('error', () => {});
  const c = tlsConnect({ socket: raw, servername: 'web.test', ca });
  c.on('error', () => {});
  const served = await new Promise<boolean>((resolve) => {
    c.once('secureConnect', () => {
      c.write('x');
      c.once('data', () => resolve(true));
    });
    c.once('close', () => resolve(false));
  });
  if (served) held.push(c);
  else c.destroy();
  return served;
}

test('TLS termination with a shared max_connections_per_source: the lease is taken before the handshake without waiting on Redis (also when Redis is stuck), and the limit holds', async (t) => {
  if (!needRedis(t)) return;
  const redis = await startRedis(t);
  const pki = makeIssuer(t);
  const cert = pki.server(['web.test']);
  const echo = await echoServer(t);
  const lb = await startLb(t, {
    ...svc([addr(echo)], {
      tls: { cert: cert.cert, key: cert.key },
      max_connections_per_source: 2,
      share_limits: true,
    }),
    cluster: {
      redis: `redis://127.0.0.1:${redis.port}`,
      instance: 'a',
      wait: '1s',
      flush_interval: '5ms',
    },
  });
  await waitFor(() => lb.redis?.up === true, 10_000, 'connected');
  const port = lb.address('web').port;
  const held: Socket[] = [];
  t.after(() => {
    for (const c of held) c.destroy();
  });
  assert.equal(await tlsTry(port, '127.0.0.71', pki.ca, held), true, 'first: served');
  assert.equal(await tlsTry(port, '127.0.0.71', pki.ca, held), true, 'second: served');
  assert.equal(await tlsTry(port, '127.0.0.71', pki.ca, held), false, 'third: over the limit');
  // What it holds is leased in Redis, for the other instances to count.
  await waitFor(
    () => redisCli(redis.port, 'HGET', 'blitz-lb:slots:web:127.0.0.71', 'c:a') === '2',
    5000,
    'two slots leased in Redis',
  );
  // Redis stuck: a new source's handshake does not wait for it (the wait is 1 s).
  redis.pause();
  t.after(() => redis.resume());
  const t0 = Date.now();
  assert.equal(await tlsTry(port, '127.0.0.72', pki.ca, held), true, 'served while Redis is stuck');
  assert.ok(Date.now() - t0 < 500, `${Date.now() - t0} ms`);
});

test('a client that leaves while the cluster gate holds it: the session ends at once, no backend is dialed for it, nothing is counted against its source, its slot is free', async (t) => {
  if (!needRedis(t)) return;
  const redis = await startRedis(t);
  let dialed = 0;
  const backend = await listen(
    t,
    createServer((s) => {
      dialed++;
      s.end('A');
    }),
  );
  const lb = await startLb(t, {
    ...svc([addr(backend)], {
      stick: { expire: '10m' },
      max_connections_per_source: 1,
      share_limits: true,
    }),
    cluster: {
      redis: `redis://127.0.0.1:${redis.port}`,
      instance: 'a',
      wait: '600ms',
      flush_interval: '5ms',
    },
  });
  await waitFor(() => lb.redis?.up === true, 10_000, 'connected');
  const port = lb.address('web').port;
  const web = lb.service('web');
  // Redis stuck: a new source's stick lookup and lease wait (up to 600 ms).
  redis.pause();
  t.after(() => redis.resume());
  // A request then a FIN is no leaving (the client waits for its answer): served after the wait.
  const half = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.76' });
  half.on('error', () => {});
  await once(half, 'connect');
  half.end('request');
  assert.equal((await readAll(half)).toString(), 'A', 'a half-closed client is served');
  assert.equal(dialed, 1);
  // Leaving while held, by a reset or a FIN with nothing sent: the session ends at once, and
  // the held accept dials nothing.
  for (const how of ['reset', 'fin'] as const) {
    const c0 = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.75' });
    c0.on('error', () => {});
    await once(c0, 'connect');
    await waitFor(() => web.activeSessions === 1, 2000, 'the session held');
    const t0 = Date.now();
    if (how === 'reset') c0.resetAndDestroy();
    else c0.end();
    await waitFor(() => web.activeSessions === 0, 2000, `the session ended (${how})`);
    assert.ok(
      Date.now() - t0 < 400,
      `${how}: ended after ${Date.now() - t0} ms (the wait is 600 ms)`,
    );
    c0.destroy();
  }
  // The timed-out GETs (command timeout 1 s) come after the gate let the held accepts go.
  await waitFor(() => (lb.redis?.errors ?? 0) > 0, 5000, 'the stuck commands timed out');
  redis.resume();
  assert.equal(dialed, 1, 'no backend dialed for the client that left');
  assert.equal(web.counters.refusedSourceConnections, 0);
  assert.equal(web.activeSessions, 0);
  // Its one slot is free: the next client from that source is served.
  await waitFor(() => lb.redis?.up === true, 5000, 'up again');
  const c = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.75' });
  c.on('error', () => {});
  assert.equal((await readAll(c)).toString(), 'A');
  c.destroy();
  assert.equal(dialed, 2);
  await waitFor(
    () => ['', '0'].includes(redisCli(redis.port, 'HGET', 'blitz-lb:slots:web:127.0.0.75', 'c:a')),
    5000,
    'no slot left held in Redis',
  );
});

test('a Redis that accepts and never answers, and one that refuses the password: clients are served at once on local decisions, /readyz stays 200, failures are counted and logged once per interval', async (t) => {
  if (!needRedis(t)) return;
  // Accepts, reads, never writes a byte.
  const mute = await listen(
    t,
    createServer((s) => {
      s.on('data', () => {});
      s.on('error', () => {});
    }),
  );
  const locked = await startRedis(t, ['--requirepass', 'right-one']);
  const echo = addr(await echoServer(t));
  const start = (url: string) =>
    runBalancer(
      t,
      (port, adminPort) => `
[log]
level = "info"
[admin]
listen = "127.0.0.1:${adminPort}"
[cluster]
redis = "${url}"
wait = "1s"
log_interval = "1m"
[services.web]
listen = "127.0.0.1:${port}"
backends = ["${echo}"]
max_connections_per_source = 2
share_limits = true
[services.web.health]
kind = "none"
[services.web.stick]
expire = "10m"
`,
    );
  const lbs = await Promise.all([
    start(`redis://127.0.0.1:${mute}`),
    start(`redis://:wrong-one@127.0.0.1:${locked.port}`),
  ]);
  for (const lb of lbs) {
    await waitFor(
      async () =>
        (sample((await lb.admin('/metrics')).text, 'blitz_lb_cluster_redis_errors_total') ?? 0) > 0,
      10_000,
      'failures counted',
    );
    const held: Socket[] = [];
    t.after(() => {
      for (const c of held) c.destroy();
    });
    for (const ip of ['127.0.0.91', '127.0.0.92']) {
      const t0 = Date.now();
      const c = connect({ port: lb.port, host: '127.0.0.1', localAddress: ip });
      c.on('error', () => {});
      held.push(c);
      c.write('ping');
      await once(c, 'data');
      assert.ok(Date.now() - t0 < 500, `${ip}: ${Date.now() - t0} ms (no wait on a Redis not up)`);
    }
    // The local limit (limit ÷ 1) still holds.
    const c = connect({ port: lb.port, host: '127.0.0.1', localAddress: '127.0.0.91' });
    c.on('error', () => {});
    held.push(c);
    c.write('ping');
    const a = connect({ port: lb.port, host: '127.0.0.1', localAddress: '127.0.0.91' });
    a.on('error', () => {});
    held.push(a);
    await once(a, 'close');
    assert.equal((await lb.admin('/readyz')).status, 200);
    assert.equal(sample((await lb.admin('/metrics')).text, 'blitz_lb_cluster_redis_up'), 0);
    const warned = lb
      .logs()
      .filter((l) => l.msg === 'cluster: redis unreachable or failing; deciding locally');
    assert.equal(warned.length, 1, 'logged once per interval');
  }
  assert.ok(
    (lbs[1]?.logs() ?? []).some((l) => /WRONGPASS|invalid username-password/i.test(String(l.err))),
    'the wrong password is named in the log',
  );
});

test("TLS termination with a shared stick table: the client's entry is read from Redis during the handshake, so even with wait = 0 it lands where the group put it", async (t) => {
  if (!needRedis(t)) return;
  const redis = await startRedis(t);
  const pki = makeIssuer(t);
  const cert = pki.server(['web.test']);
  const backends = [addr(await bannerServer(t, 'A')), addr(await bannerServer(t, 'B'))];
  const sources = ['127.0.0.101', '127.0.0.102', '127.0.0.103'];
  // Another instance put these clients on B.
  for (const ip of sources)
    redisCli(redis.port, 'SET', `blitz-lb:stick:web:${ip}`, backends[1] as string);
  const lb = await startLb(t, {
    ...svc(backends, {
      balance: 'round-robin',
      tls: { cert: cert.cert, key: cert.key },
      stick: { expire: '10m' },
    }),
    cluster: { redis: `redis://127.0.0.1:${redis.port}`, wait: '0ms' },
  });
  await waitFor(() => lb.redis?.up === true, 10_000, 'connected');
  for (const ip of sources) {
    const raw = connect({ port: lb.address('web').port, host: '127.0.0.1', localAddress: ip });
    raw.on('error', () => {});
    const c = tlsConnect({ socket: raw, servername: 'web.test', ca: pki.ca });
    c.on('error', () => {});
    assert.equal((await readAll(c)).toString(), 'B', `${ip}: the group's backend`);
    c.destroy();
  }
});

test('Redis Sentinel failover mid-run: stuck clients never wait, new ones wait at most cluster.wait, /readyz stays 200, and after the promotion entries land in the new master', async (t) => {
  if (!needRedis(t)) return;
  // No 5 s wait for more replicas before the first (diskless) sync.
  const master = await startRedis(t, ['--repl-diskless-sync-delay', '0']);
  const replica = await startRedis(t, ['--replicaof', '127.0.0.1', String(master.port)]);
  const sentinelPort = await refusedPort();
  const dir = mkdtempSync(join(tmpdir(), 'blitz-lb-sentinel-'));
  writeFileSync(
    join(dir, 'sentinel.conf'),
    [
      `port ${sentinelPort}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor main 127.0.0.1 ${master.port} 1`,
      'sentinel down-after-milliseconds main 400',
      'sentinel failover-timeout main 2000',
      '',
    ].join('\n'),
  );
  const sentinel = spawn('redis-server', [join(dir, 'sentinel.conf'), '--sentinel'], {
    stdio: 'ignore',
  });
  t.after(() => {
    sentinel.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  await waitForPort(sentinelPort);
  await waitFor(
    () => redisCli(replica.port, 'INFO', 'replication').includes('master_link_status:up'),
    10_000,
    'the replica in sync',
  );
  const backends = [addr(await bannerServer(t, 'A')), addr(await bannerServer(t, 'B'))];
  const lb = await runBalancer(
    t,
    (port, adminPort) => `
[log]
level = "info"
[admin]
listen = "127.0.0.1:${adminPort}"
[cluster]
redis = "redis://127.0.0.1:${master.port}"
sentinels = ["127.0.0.1:${sentinelPort}"]
sentinel_master = "main"
wait = "200ms"
flush_interval = "5ms"
[services.web]
listen = "127.0.0.1:${port}"
backends = [${backends.map((b) => `"${b}"`).join(', ')}]
balance = "round-robin"
[services.web.health]
kind = "none"
[services.web.stick]
expire = "10m"
`,
  );
  const up = async () =>
    sample((await lb.admin('/metrics')).text, 'blitz_lb_cluster_redis_up') === 1;
  await waitFor(up, 10_000, 'connected through the sentinel');
  const banner = async (ip: string): Promise<string> => {
    const c = connect({ port: lb.port, host: '127.0.0.1', localAddress: ip });
    c.on('error', () => {});
    const body = (await readAll(c)).toString();
    c.destroy();
    return body;
  };
  const stuck = ['127.0.0.111', '127.0.0.112'];
  const first = await Promise.all(stuck.map(banner));
  await master.kill();
  // Until the sentinel promotes the replica (~0.4 s to see it down, then the failover).
  for (let i = 0; i < 5; i++) {
    for (const [k, ip] of stuck.entries()) {
      const t0 = Date.now();
      assert.equal(await banner(ip), first[k]);
      assert.ok(Date.now() - t0 < 150, `stuck ${ip}: ${Date.now() - t0} ms`);
    }
    const t0 = Date.now();
    assert.match(await banner(`127.0.0.${120 + i}`), /^[AB]$/);
    assert.ok(Date.now() - t0 < 600, `new client: ${Date.now() - t0} ms (wait 200 ms)`);
    assert.equal((await lb.admin('/readyz')).status, 200);
  }
  await waitFor(
    () => redisCli(replica.port, 'INFO', 'replication').includes('role:master'),
    15_000,
    'the replica promoted',
  );
  await waitFor(up, 15_000, 'reconnected to the new master');
  const after = await banner('127.0.0.130');
  await waitFor(
    () => redisCli(replica.port, 'GET', 'blitz-lb:stick:web:127.0.0.130') !== '',
    5000,
    'a new entry in the new master',
  );
  assert.equal(
    redisCli(replica.port, 'GET', 'blitz-lb:stick:web:127.0.0.130'),
    backends[after === 'A' ? 0 : 1],
  );
});
