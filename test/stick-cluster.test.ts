// issue 26: blitz-lb instances as separate processes sharing a stick table and
// per-source limits through a real redis-server, and what happens when it dies
// and comes back.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { waitForPort } from '../bench/lib/net.js';
import { type RunningCli, runBalancer, sample } from './helpers/cluster.js';
import { needRedis, type RedisServer, startRedis } from './helpers/redis-server.js';
import {
  addr,
  bannerServer,
  echoServer,
  readAll,
  refusedPort,
  startLb,
  svc,
  waitFor,
} from './helpers/servers.js';

interface Opts {
  name: string;
  backends: string[];
  lines?: string[];
  /** [process] workers (default 1). */
  workers?: number;
}

/** One instance: [cluster] on `redis`, one service "web" with `lines`. */
function instance(t: TestContext, redis: RedisServer, o: Opts): Promise<RunningCli> {
  return runBalancer(
    t,
    (port, adminPort) => `
[process]
workers = ${o.workers ?? 1}
[log]
level = "info"
[admin]
listen = "127.0.0.1:${adminPort}"
[cluster]
redis = "redis://127.0.0.1:${redis.port}"
instance = "${o.name}"
wait = "1s"
flush_interval = "5ms"
heartbeat = "200ms"
log_interval = "100ms"
[services.web]
listen = "127.0.0.1:${port}"
backends = [${o.backends.map((b) => `"${b}"`).join(', ')}]
connect_timeout = "1s"
${(o.lines ?? []).join('\n')}
[services.web.health]
kind = "none"
[services.web.pool]
min_idle = 0
`,
  );
}

async function metric(lb: RunningCli, name: string): Promise<number> {
  return sample((await lb.admin('/metrics')).text, name) ?? Number.NaN;
}

async function redisUp(lb: RunningCli, up = 1): Promise<void> {
  await waitFor(
    async () => (await metric(lb, 'blitz_lb_cluster_redis_up')) === up,
    15_000,
    `redis_up = ${up}`,
  );
}

/** One connection from loopback address `from`; resolves with the backend's banner. */
async function bannerFrom(port: number, from: string): Promise<string> {
  const c = connect({ port, host: '127.0.0.1', localAddress: from });
  c.on('error', () => {});
  const body = (await readAll(c)).toString();
  c.destroy();
  return body;
}

/** Redis's copy of a stick entry (through redis-cli). */
function redisGet(redis: RedisServer, key: string): string {
  return spawnSync('redis-cli', ['-p', String(redis.port), 'GET', key], {
    encoding: 'utf8',
  }).stdout.trim();
}

const SOURCES = ['127.0.0.21', '127.0.0.22', '127.0.0.23', '127.0.0.24', '127.0.0.25'];

test('shared stick table: a client stuck through instance A lands on the same backend through B; an added backend moves nobody', async (t) => {
  if (!needRedis(t)) return;
  const redis = await startRedis(t);
  const ports = [
    await bannerServer(t, 'A'),
    await bannerServer(t, 'B'),
    await bannerServer(t, 'C'),
  ];
  const backends = ports.map(addr);
  const lines = ['balance = "round-robin"', '[services.web.stick]', 'expire = "10m"'];
  const [a, b] = await Promise.all([
    instance(t, redis, { name: 'a', backends, lines }),
    instance(t, redis, { name: 'b', backends, lines }),
  ]);
  await Promise.all([redisUp(a), redisUp(b)]);
  const first = new Map<string, string>();
  for (const ip of SOURCES) first.set(ip, await bannerFrom(a.port, ip));
  assert.ok(new Set(first.values()).size > 1, 'round-robin spread them');
  await waitFor(
    () => SOURCES.every((ip) => redisGet(redis, `blitz-lb:stick:web:${ip}`) !== ''),
    5000,
    'entries written behind',
  );
  // B, asked in the other order (its own round-robin would place them differently), follows A.
  for (const ip of [...SOURCES].reverse())
    assert.equal(await bannerFrom(b.port, ip), first.get(ip), `${ip} through B`);
  // A fourth backend on both: nobody moves.
  const d = await bannerServer(t, 'D');
  for (const lb of [a, b]) {
    const r = await lb.admin(`/api/services/web/backends/${addr(d)}`, {
      method: 'POST',
      body: '{}',
    });
    assert.equal(r.status, 201, r.text);
  }
  for (const ip of SOURCES) {
    assert.equal(await bannerFrom(a.port, ip), first.get(ip), `${ip} through A after the add`);
    assert.equal(await bannerFrom(b.port, ip), first.get(ip), `${ip} through B after the add`);
  }
  const st = (await b.admin('/api/services/web/stick')).body as {
    total: number;
    counters: { moves: number };
  };
  assert.equal(st.total, SOURCES.length);
  assert.equal(st.counters.moves, 0);
});

/** Opens a session from `from` and says whether it was served (an echo came back) or refused (closed). */
async function tryHold(port: number, from: string, held: Socket[]): Promise<boolean> {
  const c = connect({ port, host: '127.0.0.1', localAddress: from });
  c.on('error', () => {});
  c.write('x');
  const served = await new Promise<boolean>((resolve) => {
    c.once('data', () => resolve(true));
    c.once('close', () => resolve(false));
  });
  if (served) held.push(c);
  else c.destroy();
  return served;
}

test('shared limits: max_connections_per_source = 10 across 3 instances admits 10, not 30', async (t) => {
  if (!needRedis(t)) return;
  const redis = await startRedis(t);
  const echo = addr(await echoServer(t));
  const lines = ['max_connections_per_source = 10', 'share_limits = true'];
  const lbs = await Promise.all(
    ['a', 'b', 'c'].map((name) => instance(t, redis, { name, backends: [echo], lines })),
  );
  await Promise.all(lbs.map((lb) => redisUp(lb)));
  await waitFor(
    async () => (await metric(lbs[0] as RunningCli, 'blitz_lb_cluster_instances')) === 3,
    5000,
    'three heartbeats',
  );
  const held: Socket[] = [];
  t.after(() => {
    for (const c of held) c.destroy();
  });
  let served = 0;
  for (let i = 0; i < 12; i++)
    for (const lb of lbs) if (await tryHold(lb.port, '127.0.0.31', held)) served++;
  assert.equal(served, 10);
  // Another source has its own 10, also when 36 of its clients come at once.
  const burst = await Promise.all(
    lbs.flatMap((lb) => Array.from({ length: 12 }, () => tryHold(lb.port, '127.0.0.32', held))),
  );
  assert.equal(burst.filter(Boolean).length, 10);
  // One ends: its slot can be taken again (through any instance, once returned).
  (held.shift() as Socket).destroy();
  await waitFor(
    async () => tryHold((lbs[1] as RunningCli).port, '127.0.0.31', held),
    5000,
    'the freed slot',
  );
});

test('Redis killed mid-run: stuck clients stay without waiting, new ones are placed locally, /readyz stays 200, errors are counted and logged once per interval; Redis back: entries made meanwhile are shared', async (t) => {
  if (!needRedis(t)) return;
  const redis = await startRedis(t);
  const bannerPorts = [
    await bannerServer(t, 'A'),
    await bannerServer(t, 'B'),
    await bannerServer(t, 'C'),
  ];
  const lines = [
    'balance = "round-robin"',
    'max_connections_per_source = 4',
    'share_limits = true',
    '[services.web.stick]',
    'expire = "10m"',
  ];
  const backends = bannerPorts.map(addr);
  const [a, b] = await Promise.all([
    instance(t, redis, { name: 'a', backends, lines }),
    instance(t, redis, { name: 'b', backends, lines }),
  ]);
  await Promise.all([redisUp(a), redisUp(b)]);
  // Both: each falls back to limit ÷ the N its own last heartbeat saw.
  await waitFor(
    async () =>
      (await metric(a, 'blitz_lb_cluster_instances')) === 2 &&
      (await metric(b, 'blitz_lb_cluster_instances')) === 2,
    5000,
    'two heartbeats on both',
  );
  const first = new Map<string, string>();
  for (const ip of SOURCES) first.set(ip, await bannerFrom(a.port, ip));
  await waitFor(
    () => SOURCES.every((ip) => redisGet(redis, `blitz-lb:stick:web:${ip}`) !== ''),
    5000,
    'entries written behind',
  );
  for (const ip of SOURCES) assert.equal(await bannerFrom(b.port, ip), first.get(ip));

  await redis.kill();
  await Promise.all([redisUp(a, 0), redisUp(b, 0)]);
  // Stuck clients keep their backend on both instances, each from its own table.
  for (const ip of SOURCES) {
    const t0 = Date.now();
    assert.equal(await bannerFrom(a.port, ip), first.get(ip));
    assert.equal(await bannerFrom(b.port, ip), first.get(ip));
    assert.ok(Date.now() - t0 < 900, 'no wait on a dead Redis');
  }
  // A new source is placed locally (and served) while Redis is away.
  const fresh = '127.0.0.29';
  const placed = await bannerFrom(a.port, fresh);
  assert.match(placed, /^[ABC]$/);
  assert.ok((await metric(a, 'blitz_lb_cluster_redis_errors_total')) > 0);
  assert.equal((await a.admin('/readyz')).status, 200);
  const warned = a
    .logs()
    .filter((l) => l.msg === 'cluster: redis unreachable or failing; deciding locally');
  assert.ok(
    warned.length >= 1 && warned.length <= 5,
    `${warned.length} warnings: once per interval, not per failure`,
  );

  // Back (empty, as a failed-over replica without the data): A writes its table again.
  await redis.restart();
  await Promise.all([redisUp(a), redisUp(b)]);
  await waitFor(
    () => redisGet(redis, `blitz-lb:stick:web:${fresh}`) !== '',
    5000,
    'resync of the entry made while Redis was away',
  );
  assert.equal(
    await bannerFrom(b.port, fresh),
    placed,
    'B follows what A decided while Redis was away',
  );
});

test('Redis killed mid-run: open sessions carry on, and per-source limits fall back to limit ÷ N (no client a local decision admits is refused)', async (t) => {
  if (!needRedis(t)) return;
  const redis = await startRedis(t);
  const echo = addr(await echoServer(t));
  const lines = ['max_connections_per_source = 6', 'share_limits = true'];
  const [a, b] = await Promise.all([
    instance(t, redis, { name: 'a', backends: [echo], lines }),
    instance(t, redis, { name: 'b', backends: [echo], lines }),
  ]);
  await Promise.all([redisUp(a), redisUp(b)]);
  // Both: each falls back to limit ÷ the N its own last heartbeat saw.
  await waitFor(
    async () =>
      (await metric(a, 'blitz_lb_cluster_instances')) === 2 &&
      (await metric(b, 'blitz_lb_cluster_instances')) === 2,
    5000,
    'two heartbeats on both',
  );
  const held: Socket[] = [];
  t.after(() => {
    for (const c of held) c.destroy();
  });
  // Two open through A from source .41 while Redis is up.
  assert.equal(await tryHold(a.port, '127.0.0.41', held), true);
  assert.equal(await tryHold(a.port, '127.0.0.41', held), true);
  await redis.kill();
  await redisUp(a, 0);
  await redisUp(b, 0);
  // Open sessions carry bytes both ways, untouched.
  for (const c of held) {
    c.write('still here');
    let got = '';
    await new Promise<void>((resolve) => {
      const on = (d: Buffer) => {
        got += d.toString();
        if (got.includes('still here')) {
          c.off('data', on);
          resolve();
        }
      };
      c.on('data', on);
    });
  }
  // Each instance now allows 6 ÷ 2 = 3 from a source: A holds 2, so one more; B three.
  assert.equal(await tryHold(a.port, '127.0.0.41', held), true);
  assert.equal(await tryHold(a.port, '127.0.0.41', held), false);
  for (let i = 0; i < 3; i++) assert.equal(await tryHold(b.port, '127.0.0.41', held), true);
  assert.equal(await tryHold(b.port, '127.0.0.41', held), false);
  assert.equal((await b.admin('/readyz')).status, 200);
});

test("workers = 2 with [cluster] redis: every worker shares the table, so a client keeps one backend whichever worker accepts it; the admin API lists every worker's entries", async (t) => {
  if (!needRedis(t)) return;
  const redis = await startRedis(t);
  const ports = [
    await bannerServer(t, 'A'),
    await bannerServer(t, 'B'),
    await bannerServer(t, 'C'),
  ];
  const lines = ['balance = "round-robin"', '[services.web.stick]', 'expire = "10m"'];
  const lb = await instance(t, redis, { name: 'w', backends: ports.map(addr), lines, workers: 2 });
  await redisUp(lb, 2);
  // Written behind: two workers may each place a source before either's entry is in Redis;
  // the first write stands for the group and the other worker adopts it.
  for (const ip of SOURCES) await bannerFrom(lb.port, ip);
  await waitFor(
    () => SOURCES.every((ip) => redisGet(redis, `blitz-lb:stick:web:${ip}`) !== ''),
    5000,
    'entries written behind',
  );
  for (const ip of SOURCES) {
    const got = new Set<string>();
    for (let i = 0; i < 8; i++) got.add(await bannerFrom(lb.port, ip));
    assert.equal(got.size, 1, `${ip} went to ${[...got].join(', ')}`);
  }
  const st = (await lb.admin('/api/services/web/stick')).body as {
    total: number;
    entries: { key: string; worker: number }[];
  };
  assert.deepEqual(new Set(st.entries.map((e) => e.key)), new Set(SOURCES));
  assert.ok(st.entries.every((e) => e.worker === 1 || e.worker === 2));
  assert.equal((await lb.admin('/api/services/web/stick', { method: 'DELETE' })).status, 200);
  assert.equal(((await lb.admin('/api/services/web/stick')).body as { total: number }).total, 0);
});

test('two instances that placed the same new client before either wrote it agree after the flush: the first write stands, the other adopts it', async (t) => {
  if (!needRedis(t)) return;
  const redis = await startRedis(t);
  const ports = [await bannerServer(t, 'A'), await bannerServer(t, 'B')];
  const cfg = (name: string) => ({
    ...svc(ports.map(addr), { balance: 'round-robin', stick: { expire: '10m' } }),
    cluster: {
      redis: `redis://127.0.0.1:${redis.port}`,
      instance: name,
      wait: '1s',
      flush_interval: '300ms',
    },
  });
  const a = await startLb(t, cfg('a'));
  const b = await startLb(t, cfg('b'));
  await waitFor(() => a.redis?.up === true && b.redis?.up === true, 10_000, 'both connected');
  // B's rotation one ahead: the same client, new to both, lands on different backends.
  await bannerFrom(b.address('web').port, '127.0.0.51');
  const viaA = await bannerFrom(a.address('web').port, '127.0.0.52');
  const viaB = await bannerFrom(b.address('web').port, '127.0.0.52');
  assert.notEqual(viaA, viaB, 'placed apart before either wrote');
  const adopted = () =>
    (a.service('web').sticky?.table.counters.adopted ?? 0) +
    (b.service('web').sticky?.table.counters.adopted ?? 0);
  await waitFor(() => adopted() === 1, 5000, "one instance adopting the other's entry");
  const group = redisGet(redis, 'blitz-lb:stick:web:127.0.0.52');
  assert.equal(
    await bannerFrom(a.address('web').port, '127.0.0.52'),
    group === addr(ports[0] as number) ? 'A' : 'B',
  );
  assert.equal(
    await bannerFrom(b.address('web').port, '127.0.0.52'),
    group === addr(ports[0] as number) ? 'A' : 'B',
  );
});

test('shared limits: max_rate_per_source = 10 across 2 instances admits 10 new sessions in a second, not 20', async (t) => {
  if (!needRedis(t)) return;
  const redis = await startRedis(t);
  const banner = addr(await bannerServer(t, 'A'));
  const lines = ['max_rate_per_source = 10', 'share_limits = true'];
  const [a, b] = await Promise.all([
    instance(t, redis, { name: 'a', backends: [banner], lines }),
    instance(t, redis, { name: 'b', backends: [banner], lines }),
  ]);
  await Promise.all([redisUp(a), redisUp(b)]);
  // Both: each falls back to limit ÷ the N its own last heartbeat saw.
  await waitFor(
    async () =>
      (await metric(a, 'blitz_lb_cluster_instances')) === 2 &&
      (await metric(b, 'blitz_lb_cluster_instances')) === 2,
    5000,
    'two heartbeats on both',
  );
  for (let attempt = 0; attempt < 5; attempt++) {
    // At the start of a second, so that the whole burst falls in one rate window.
    await waitFor(() => Date.now() % 1000 < 50, 2000, 'a new second');
    const second = Math.floor(Date.now() / 1000);
    const tries = [a, b].flatMap((lb) =>
      Array.from({ length: 15 }, () => bannerFrom(lb.port, '127.0.0.61')),
    );
    const served = (await Promise.all(tries)).filter((x) => x === 'A').length;
    if (Math.floor(Date.now() / 1000) !== second) continue; // the burst spilled into the next second: again
    assert.equal(served, 10);
    return;
  }
  t.skip('no burst fitted in one second on this machine');
});

test('Redis stuck (SIGSTOP): an accept waits at most cluster.wait, then the strategy and the local share (limit ÷ N) decide; /readyz stays 200', async (t) => {
  if (!needRedis(t)) return;
  const redis = await startRedis(t);
  const ports = [await bannerServer(t, 'A'), await bannerServer(t, 'B')];
  const lb = await runBalancer(
    t,
    (port, adminPort) => `
[log]
level = "info"
[admin]
listen = "127.0.0.1:${adminPort}"
[cluster]
redis = "redis://127.0.0.1:${redis.port}"
wait = "150ms"
[services.web]
listen = "127.0.0.1:${port}"
backends = ["${addr(ports[0] as number)}", "${addr(ports[1] as number)}"]
max_connections_per_source = 1
share_limits = true
[services.web.health]
kind = "none"
[services.web.stick]
expire = "10m"
`,
  );
  await redisUp(lb);
  redis.pause();
  for (const ip of ['127.0.0.81', '127.0.0.82', '127.0.0.83']) {
    const t0 = Date.now();
    assert.match(await bannerFrom(lb.port, ip), /^[AB]$/, `${ip} served while Redis is stuck`);
    const ms = Date.now() - t0;
    assert.ok(ms >= 100 && ms < 1000, `${ip}: ${ms} ms (the wait is 150 ms)`);
  }
  assert.equal((await lb.admin('/readyz')).status, 200);
  await waitFor(
    async () => (await metric(lb, 'blitz_lb_cluster_redis_errors_total')) > 0,
    5000,
    'command timeouts counted',
  );
  redis.resume();
});

test('Redis Sentinel: [cluster] sentinels finds the master through a real sentinel (redis-server --sentinel), and entries land there', async (t) => {
  if (!needRedis(t)) return;
  const redis = await startRedis(t);
  const sentinelPort = await refusedPort();
  const dir = mkdtempSync(join(tmpdir(), 'blitz-lb-sentinel-'));
  const conf = join(dir, 'sentinel.conf');
  writeFileSync(
    conf,
    `port ${sentinelPort}\nbind 127.0.0.1\ndir ${dir}\nsentinel monitor main 127.0.0.1 ${redis.port} 1\n`,
  );
  const sentinel = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
  t.after(() => {
    sentinel.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  await waitForPort(sentinelPort);
  const ports = [await bannerServer(t, 'A'), await bannerServer(t, 'B')];
  const lb = await startLb(t, {
    ...svc(ports.map(addr), { stick: { expire: '10m' } }),
    cluster: {
      // The host here is not used with sentinels (nothing listens on it): the sentinel names the master.
      redis: `redis://127.0.0.1:${await refusedPort()}`,
      sentinels: [`127.0.0.1:${sentinelPort}`],
      sentinel_master: 'main',
      flush_interval: '5ms',
    },
  });
  await waitFor(() => lb.redis?.up === true, 10_000, 'connected through the sentinel');
  const got = await bannerFrom(lb.address('web').port, '127.0.0.91');
  await waitFor(
    () => redisGet(redis, 'blitz-lb:stick:web:127.0.0.91') !== '',
    5000,
    'the entry in the master',
  );
  assert.equal(
    redisGet(redis, 'blitz-lb:stick:web:127.0.0.91'),
    addr(ports[got === 'A' ? 0 : 1] as number),
  );
});

test('shared stick table behind routes: an instance with the same routes follows the shared entries; one whose route chose another group moves them into its group', async (t) => {
  if (!needRedis(t)) return;
  const redis = await startRedis(t);
  const ports = [
    await bannerServer(t, 'A'),
    await bannerServer(t, 'B'),
    await bannerServer(t, 'C'),
  ];
  const backends = ports.map(addr);
  const routed = (group: string[]) => [
    'balance = "round-robin"',
    '[services.web.stick]',
    'expire = "10m"',
    '[[services.web.route]]',
    'source = ["127.0.0.0/8"]',
    `backends = [${group.map((b) => `"${b}"`).join(', ')}]`,
  ];
  const [a, b, c] = await Promise.all([
    instance(t, redis, { name: 'a', backends, lines: routed(backends.slice(0, 2)) }),
    instance(t, redis, { name: 'b', backends, lines: routed(backends.slice(0, 2)) }),
    instance(t, redis, { name: 'c', backends, lines: routed(backends.slice(2)) }),
  ]);
  await Promise.all([redisUp(a), redisUp(b), redisUp(c)]);
  const first = new Map<string, string>();
  for (const ip of SOURCES) first.set(ip, await bannerFrom(a.port, ip));
  assert.deepEqual([...new Set(first.values())].sort(), ['A', 'B'], 'round-robin within the group');
  await waitFor(
    () => SOURCES.every((ip) => redisGet(redis, `blitz-lb:stick:web:${ip}`) !== ''),
    5000,
    'entries written behind',
  );
  for (const ip of [...SOURCES].reverse())
    assert.equal(await bannerFrom(b.port, ip), first.get(ip), `${ip} through B`);
  // C's route takes only backend C: Redis's entries point outside its group, so each moves.
  for (const ip of SOURCES) assert.equal(await bannerFrom(c.port, ip), 'C', `${ip} through C`);
  const st = (await c.admin('/api/services/web/stick')).body as { counters: { moves: number } };
  assert.equal(st.counters.moves, SOURCES.length);
});
