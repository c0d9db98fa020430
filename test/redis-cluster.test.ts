// [cluster] redis_cluster: blitz-lb instances (separate processes) sharing a
// stick table and per-source limits through a real Redis Cluster of three
// masters on loopback, and what happens when one master dies mid-run.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { type TestContext, test } from 'node:test';
import { runCheck } from '../src/check.js';
import { parseConfig } from '../src/config/schema.js';
import { tempConfig } from './helpers/cli.js';
import { type RunningCli, runBalancer, sample } from './helpers/cluster.js';
import { type RedisCluster, startRedisCluster } from './helpers/redis-cluster.js';
import { needRedis } from './helpers/redis-server.js';
import {
  addr,
  bannerServer,
  echoServer,
  readAll,
  refusedPort,
  svc,
  waitFor,
} from './helpers/servers.js';

/** One instance on the cluster: service "web" (stick, banners) and "db" (a shared limit of 3 a source, echo). */
async function instance(
  t: TestContext,
  rc: RedisCluster,
  name: string,
  banners: string[],
  echo: string,
): Promise<RunningCli & { dbPort: number }> {
  const dbPort = await refusedPort();
  const lb = await runBalancer(
    t,
    (port, adminPort) => `
[log]
level = "info"
[admin]
listen = "127.0.0.1:${adminPort}"
[cluster]
redis = "redis://127.0.0.1:${rc.ports[0]}"
redis_cluster = [${rc.ports
      .slice(0, 2)
      .map((p) => `"127.0.0.1:${p}"`)
      .join(', ')}]
instance = "${name}"
wait = "300ms"
flush_interval = "5ms"
heartbeat = "200ms"
log_interval = "100ms"
[services.web]
listen = "127.0.0.1:${port}"
backends = [${banners.map((b) => `"${b}"`).join(', ')}]
balance = "round-robin"
[services.web.health]
kind = "none"
[services.web.pool]
min_idle = 0
[services.web.stick]
expire = "10m"
[services.db]
listen = "127.0.0.1:${dbPort}"
backends = ["${echo}"]
max_connections_per_source = 3
share_limits = true
[services.db.health]
kind = "none"
[services.db.pool]
min_idle = 0
`,
  );
  return Object.assign(lb, { dbPort });
}

async function metric(lb: RunningCli, name: string): Promise<number> {
  return sample((await lb.admin('/metrics')).text, name) ?? Number.NaN;
}

async function bannerFrom(port: number, from: string): Promise<string> {
  const c = connect({ port, host: '127.0.0.1', localAddress: from });
  c.on('error', () => {});
  const body = (await readAll(c)).toString();
  c.destroy();
  return body;
}

/** Opens a session from `from`: true when served (an echo came back), false when refused. */
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

const SOURCES = [
  '127.0.0.21',
  '127.0.0.22',
  '127.0.0.23',
  '127.0.0.24',
  '127.0.0.25',
  '127.0.0.26',
];

test('Redis Cluster: a client stuck through A lands on the same backend through B, a shared limit holds across both, keys spread over the masters, a moved slot is followed (MOVED), a clear reaches every master; a master killed mid-run: no wait beyond cluster.wait, /readyz 200, errors counted', async (t) => {
  if (!needRedis(t)) return;
  const rc = await startRedisCluster(t);
  const banners = [
    addr(await bannerServer(t, 'A')),
    addr(await bannerServer(t, 'B')),
    addr(await bannerServer(t, 'C')),
  ];
  const echo = addr(await echoServer(t));
  const [a, b] = await Promise.all([
    instance(t, rc, 'a', banners, echo),
    instance(t, rc, 'b', banners, echo),
  ]);
  await waitFor(
    async () =>
      (await metric(a, 'blitz_lb_cluster_instances')) === 2 &&
      (await metric(b, 'blitz_lb_cluster_instances')) === 2,
    10_000,
    'both connected and counting two heartbeats',
  );

  const first = new Map<string, string>();
  for (const ip of SOURCES) first.set(ip, await bannerFrom(a.port, ip));
  assert.ok(new Set(first.values()).size > 1, 'round-robin spread them');
  await waitFor(
    async () => {
      for (const ip of SOURCES)
        if ((await rc.cli('GET', `blitz-lb:stick:web:${ip}`)) === '') return false;
      return true;
    },
    5000,
    'entries written behind, each to the master of its slot',
  );
  // The keys are spread: more than one master holds some (a pipeline could not have sent them).
  const sizes = rc.ports.map((p) =>
    Number(spawnSync('redis-cli', ['-p', String(p), 'DBSIZE'], { encoding: 'utf8' }).stdout),
  );
  assert.ok(sizes.filter((n) => n > 0).length >= 2, `keys per master: ${sizes.join(', ')}`);
  for (const ip of [...SOURCES].reverse())
    assert.equal(await bannerFrom(b.port, ip), first.get(ip), `${ip} through B`);

  // A limit of 3 a source across both instances admits 3, not 6.
  const held: Socket[] = [];
  t.after(() => {
    for (const c of held) c.destroy();
  });
  let served = 0;
  for (let i = 0; i < 4; i++)
    for (const lb of [a, b]) if (await tryHold(lb.dbPort, '127.0.0.31', held)) served++;
  assert.equal(served, 3);

  // A slot moved behind the instances' backs: A's write of a new client gets a MOVED and
  // follows it; B's lookup too, and B agrees.
  const moved = '127.0.0.50';
  const owner = await rc.moveSlotOf(`blitz-lb:stick:web:${moved}`);
  const placed = await bannerFrom(a.port, moved);
  await waitFor(
    () =>
      spawnSync('redis-cli', ['-p', String(owner), 'GET', `blitz-lb:stick:web:${moved}`], {
        encoding: 'utf8',
      }).stdout.trim() !== '',
    5000,
    "the entry at the slot's new master",
  );
  assert.equal(await bannerFrom(b.port, moved), placed, 'B read it from the new master');

  // Clearing the table through B clears it on every master (a SCAN of each, one DEL a key).
  assert.equal((await b.admin('/api/services/web/stick', { method: 'DELETE' })).status, 200);
  await waitFor(
    async () => {
      for (const ip of [...SOURCES, moved])
        if ((await rc.cli('GET', `blitz-lb:stick:web:${ip}`)) !== '') return false;
      return true;
    },
    5000,
    'no entry left on any master',
  );

  // A master dies: its slots have no master; the cluster says CLUSTERDOWN once the others see it.
  await rc.kill(2);
  for (let round = 0; round < 3; round++) {
    for (const ip of SOURCES) {
      const t0 = Date.now();
      assert.equal(await bannerFrom(a.port, ip), first.get(ip), `${ip} through A, round ${round}`);
      assert.ok(Date.now() - t0 < 250, 'a stuck client never waits on Redis');
    }
    // New clients (B's table is empty): at most cluster.wait (300 ms) each, then the strategy decides.
    const fresh = `127.0.0.${40 + round}`;
    const t0 = Date.now();
    assert.match(await bannerFrom(b.port, fresh), /^[ABC]$/);
    assert.ok(Date.now() - t0 < 900, `${fresh}: ${Date.now() - t0} ms`);
    assert.equal((await a.admin('/readyz')).status, 200);
    assert.equal((await b.admin('/readyz')).status, 200);
  }
  await waitFor(
    async () => (await metric(b, 'blitz_lb_cluster_redis_errors_total')) > 0,
    5000,
    'failures counted',
  );
  // The open sessions carry on.
  for (const c of held) {
    c.write('y');
    await new Promise((r) => c.once('data', r));
  }
});

test('config: redis_cluster errors name their path (not with sentinels, database 0 only, host:port nodes)', () => {
  const bad = (cluster: Record<string, unknown>) => {
    try {
      parseConfig({ ...svc(['127.0.0.1:1']), cluster }, { allowEphemeralListen: true });
    } catch (err) {
      return (err as Error).message;
    }
    return '';
  };
  const redis = 'redis://:pw@127.0.0.1:7000';
  assert.match(
    bad({
      redis,
      redis_cluster: ['127.0.0.1:7000'],
      sentinels: ['127.0.0.1:26379'],
      sentinel_master: 'm',
    }),
    /cluster\.redis_cluster: a Redis Cluster fails over by itself: give redis_cluster or sentinels, not both/,
  );
  assert.match(
    bad({ redis: 'redis://127.0.0.1:7000/2', redis_cluster: ['127.0.0.1:7000'] }),
    /cluster\.redis: a Redis Cluster has only database 0/,
  );
  assert.match(bad({ redis, redis_cluster: ['nohost'] }), /cluster\.redis_cluster\[0\]/);
  assert.match(bad({ redis, redis_cluster: [] }), /cluster\.redis_cluster/);
  assert.match(
    bad({ redis: 'http://127.0.0.1:7000', redis_cluster: ['127.0.0.1:7000'] }),
    /cluster\.redis: expected "redis:\/\/host:port"/,
  );
  const ok = parseConfig(
    {
      ...svc(['127.0.0.1:1']),
      cluster: { redis, redis_cluster: ['127.0.0.1:7000', '[::1]:7001'] },
    },
    { allowEphemeralListen: true },
  );
  assert.deepEqual(ok.cluster?.clusterNodes, [
    { host: '127.0.0.1', port: 7000 },
    { host: '::1', port: 7001 },
  ]);
});

test('config: share_limits on a service (or in [defaults]) wins over [cluster] share_limits, both ways; without [cluster] it is an error', () => {
  const parse = (web: Record<string, unknown>, top: Record<string, unknown>) =>
    parseConfig(
      { ...svc(['127.0.0.1:1'], { max_connections_per_source: 5, ...web }), ...top },
      { allowEphemeralListen: true },
    ).services[0]?.shareLimits;
  const cluster = (share: boolean) => ({
    cluster: { redis: 'redis://127.0.0.1:6379', share_limits: share },
  });
  assert.equal(parse({}, cluster(true)), true);
  assert.equal(parse({ share_limits: false }, cluster(true)), false);
  assert.equal(parse({ share_limits: true }, cluster(false)), true);
  assert.equal(parse({}, cluster(false)), false);
  assert.equal(parse({}, { ...cluster(false), defaults: { share_limits: true } }), true);
  assert.equal(
    parse({ share_limits: false }, { ...cluster(false), defaults: { share_limits: true } }),
    false,
  );
  assert.throws(
    () => parse({ share_limits: true }, {}),
    /services\.web\.share_limits: needs \[cluster\] redis/,
  );
});

test('check: the summary says which Redis [cluster] speaks to (Cluster seeds, the password redacted), and the effective config lists redis_cluster', (t) => {
  const file = tempConfig(
    t,
    `
[cluster]
redis = "rediss://:hunter2@10.0.0.5:6379"
redis_cluster = ["10.0.0.5:6379", "10.0.0.6:6379"]
instance = "lb-1"
[services.web]
listen = "127.0.0.1:18080"
backends = ["127.0.0.1:9001"]
`,
  );
  const r = runCheck(file);
  assert.equal(r.valid, true, JSON.stringify(r.errors));
  const line = r.summary.find((l) => l.startsWith('cluster: ')) ?? '';
  assert.match(line, /Redis Cluster via 10\.0\.0\.5:6379, 10\.0\.0\.6:6379/);
  assert.doesNotMatch(line, /hunter2/);
  const cluster = (r.config?.cluster ?? {}) as Record<string, unknown>;
  assert.deepEqual(cluster.redis_cluster, ['10.0.0.5:6379', '10.0.0.6:6379']);
  assert.doesNotMatch(String(cluster.redis), /hunter2/);
});
