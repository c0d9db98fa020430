// issue 26: the stick table (any balance), its admin API and metrics, and
// ip-hash with bounded loads. The Redis-shared half is in stick-cluster.test.ts.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { GCProfiler } from 'node:v8';
import { createStrategy } from '../src/balancer/index.js';
import { IpHash } from '../src/balancer/ip-hash.js';
import { parseConfig } from '../src/config/schema.js';
import { StickTable } from '../src/shared/stick-table.js';
import { StickyStrategy } from '../src/shared/sticky-strategy.js';
import { startAdmin, value } from './helpers/admin.js';
import { backendConfig, setOf, writable } from './helpers/backends.js';
import { addr, bannerServer, readAll, startLb, svc } from './helpers/servers.js';

test('stick table: least recently used out at size, idle entries forgotten at expire', () => {
  const t = new StickTable(1000, 3);
  t.set('a', 'x:1', 0);
  t.set('b', 'x:2', 10);
  t.set('c', 'x:3', 20);
  assert.equal(t.get('a', 30)?.address, 'x:1'); // a is now the most recent
  t.set('d', 'x:4', 40); // b, the least recent, goes
  assert.equal(t.get('b', 50), null);
  assert.deepEqual(
    [...t.entries()].map((e) => e.key),
    ['d', 'a', 'c'],
  );
  assert.equal(t.counters.evictions, 1);
  // c was last used at 20: gone at 1020; a (used at 30) still there at 1020.
  assert.equal(t.get('c', 1020), null);
  assert.equal(t.get('a', 1020)?.address, 'x:1');
  assert.equal(t.sweep(2100), 2); // a (used 1020) and d (40)... a at 1020+1000 = 2020 <= 2100
  assert.equal(t.length, 0);
  t.set('e', 'x:5', 0);
  t.resize(1, 1000);
  t.set('f', 'x:6', 1);
  assert.deepEqual(
    [...t.entries()].map((e) => e.key),
    ['f'],
  );
});

function stuck(balance: 'round-robin' | 'least-connections' | 'random-two' | 'ip-hash') {
  const set = setOf([backendConfig(9001), backendConfig(9002), backendConfig(9003)]);
  const s = new StickyStrategy(createStrategy(balance), new StickTable(60_000, 1000), 'source');
  s.update(set.candidates);
  set.on('change', (c) => s.update(c));
  const ctx = { clientIp: '', tried: [] as never[], now: 1 };
  const pick = (ip: string) => {
    ctx.clientIp = ip;
    ctx.now++;
    return s.pick(ctx)?.address;
  };
  return { set, s, pick };
}

for (const balance of ['round-robin', 'least-connections', 'random-two', 'ip-hash'] as const) {
  test(`stick under ${balance}: placed once by the strategy, then kept; another backend coming or going moves nobody; its own going moves it`, () => {
    const { set, s, pick } = stuck(balance);
    const ips = Array.from({ length: 60 }, (_, i) => `10.0.${i >> 8}.${i & 255}`);
    const first = new Map(ips.map((ip) => [ip, pick(ip)]));
    assert.equal(s.table.counters.misses, 60);
    for (let round = 0; round < 3; round++)
      for (const ip of ips) assert.equal(pick(ip), first.get(ip), `${ip} stays`);
    assert.equal(s.table.counters.hits, 180);
    set.add(backendConfig(9004));
    for (const ip of ips) assert.equal(pick(ip), first.get(ip), `${ip} stays after an add`);
    // Remove one backend: only its clients move, and each moves once.
    set.remove('127.0.0.1:9001');
    const onIt = ips.filter((ip) => first.get(ip) === '127.0.0.1:9001');
    assert.ok(onIt.length > 0);
    for (const ip of ips) {
      const now = pick(ip);
      if (first.get(ip) === '127.0.0.1:9001') assert.notEqual(now, '127.0.0.1:9001');
      else assert.equal(now, first.get(ip), `${ip} not on the removed one stays`);
    }
    assert.equal(s.table.counters.moves, onIt.length);
  });
}

test('stick: a backend at its max_connections or drained is no candidate: the client moves, and stays moved', () => {
  const { set, s, pick } = stuck('round-robin');
  const b = pick('10.1.1.1') as string;
  set.setDraining(b, true);
  const moved = pick('10.1.1.1');
  assert.notEqual(moved, b);
  set.setDraining(b, false);
  assert.equal(pick('10.1.1.1'), moved, 'the entry moved with the client');
  assert.equal(s.table.counters.moves, 1);
  const cap = set.get(moved as string);
  assert.ok(cap);
  writable(cap).maxConnections = 1;
  writable(cap).active = 1;
  assert.notEqual(pick('10.1.1.1'), moved);
});

test('stick: a hit allocates nothing (no GC in a million hits)', () => {
  const { pick } = stuck('least-connections');
  for (let i = 0; i < 100; i++) pick(`10.2.0.${i}`);
  const ips = Array.from({ length: 100 }, (_, i) => `10.2.0.${i}`);
  globalThis.gc?.();
  const p = new GCProfiler();
  p.start();
  for (let i = 0; i < 1_000_000; i++) pick(ips[i % 100] as string);
  const gcs = p.stop()?.statistics.length ?? -1;
  assert.equal(gcs, 0, `${gcs} collections during a million hits`);
});

test('ip-hash hash_balance_factor: a hot hash cannot take more than the bound; without it, it takes all', () => {
  const configs = [9001, 9002, 9003, 9004].map((p) => backendConfig(p));
  const plain = new IpHash();
  const set0 = setOf(configs);
  plain.update(set0.candidates);
  // 200 clients that all hash to one backend.
  const owner = plain.owner('10.9.0.0')?.address;
  const hot: string[] = [];
  for (let i = 0; hot.length < 200; i++) {
    const ip = `10.9.${i >> 8}.${i & 255}`;
    if (plain.owner(ip)?.address === owner) hot.push(ip);
  }
  const run = (factor: number): Map<string, number> => {
    const set = setOf(configs);
    const s = new IpHash(undefined, factor);
    s.update(set.candidates);
    const ctx = { clientIp: '', tried: [] as never[], now: 1 };
    for (const ip of hot) {
      ctx.clientIp = ip;
      const b = s.pick(ctx);
      assert.ok(b);
      writable(b).active++; // the session stays open
    }
    return new Map(set.all.map((b) => [b.address, b.active]));
  };
  const without = run(0);
  assert.equal(without.get(owner as string), 200);
  const bounded = run(125);
  // (200 x 1.25) / 4 = 62.5: no backend over 63, and the owner at its bound.
  for (const [a, n] of bounded) assert.ok(n <= 63, `${a} has ${n}`);
  assert.equal(bounded.get(owner as string), 63);
});

test('config: stick, hash_balance_factor, share_limits and [cluster] errors name their path', () => {
  const bad = (extra: Record<string, unknown>, top: Record<string, unknown> = {}) => {
    try {
      parseConfig({ ...svc(['127.0.0.1:1'], extra), ...top }, { allowEphemeralListen: true });
    } catch (err) {
      return (err as Error).message;
    }
    return '';
  };
  assert.match(bad({ stick: { on: 'sni' } }), /services\.web\.stick\.on: on = "sni" needs/);
  assert.match(
    bad({ stick: { on: 'cookie' } }),
    /services\.web\.stick\.on: expected one of source \| sni/,
  );
  assert.match(bad({ stick: { expire: '10ms' } }), /services\.web\.stick\.expire: must be/);
  assert.match(bad({ stick: { size: 0 } }), /services\.web\.stick\.size: must be 1-/);
  assert.match(bad({ stick: { sise: 1 } }), /services\.web\.stick\.sise/);
  assert.match(
    bad({ balance: 'ip-hash', hash_balance_factor: 100 }),
    /hash_balance_factor: must be 0 \(off\) or above 100/,
  );
  assert.match(
    bad({ hash_balance_factor: 125 }),
    /hash_balance_factor: applies to balance = "ip-hash" only/,
  );
  assert.match(bad({ share_limits: true }), /services\.web\.share_limits: needs \[cluster\] redis/);
  assert.match(
    bad({}, { cluster: { redis: 'http://x' } }),
    /cluster\.redis: expected "redis:\/\/host:port"/,
  );
  assert.match(bad({}, { cluster: {} }), /cluster\.redis: missing/);
  assert.match(
    bad({}, { cluster: { redis: 'redis://h:1', wait: '5s' } }),
    /cluster\.wait: must be/,
  );
  const ok = parseConfig(
    {
      ...svc(['127.0.0.1:1'], { stick: { expire: '1m' }, max_connections_per_source: 5 }),
      cluster: { redis: 'redis://u:secret@127.0.0.1:6379', share_limits: true },
    },
    { allowEphemeralListen: true },
  );
  const web = ok.services[0];
  assert.deepEqual(web?.stick, { on: 'source', expireMs: 60_000, size: 100_000 });
  assert.equal(web?.shareLimits, true);
  assert.equal(ok.cluster?.waitMs, 5);
});

/** One connection from `from` (a loopback address of its own); resolves with the backend's banner. */
async function bannerFrom(port: number, from: string): Promise<string> {
  const c: Socket = connect({ port, host: '127.0.0.1', localAddress: from });
  c.on('error', () => {});
  const body = (await readAll(c)).toString();
  c.destroy();
  return body;
}

test('stick table end to end: round-robin with stickiness, an added backend moves no client, a reload keeps the entries, the admin API lists and clears them, metrics count', async (t) => {
  const ports = [
    await bannerServer(t, 'A'),
    await bannerServer(t, 'B'),
    await bannerServer(t, 'C'),
  ];
  const raw = svc(ports.slice(0, 2).map(addr), { stick: { expire: '10m' } });
  const lb = await startLb(t, raw);
  const admin = await startAdmin(t, lb);
  const port = lb.address('web').port;
  const sources = ['127.0.0.11', '127.0.0.12', '127.0.0.13', '127.0.0.14'];
  const first = new Map<string, string>();
  for (const ip of sources) first.set(ip, await bannerFrom(port, ip));
  assert.deepEqual(new Set(first.values()), new Set(['A', 'B']), 'round-robin placed them');
  for (const ip of sources) assert.equal(await bannerFrom(port, ip), first.get(ip));
  lb.addBackend('web', addr(ports[2] as number));
  for (const ip of sources)
    assert.equal(await bannerFrom(port, ip), first.get(ip), 'add moved nobody');
  await lb.reload(
    parseConfig(
      {
        ...raw,
        services: {
          web: {
            ...(raw.services as { web: object }).web,
            idle_timeout: '1m',
            backends: ports.map(addr),
          },
        },
      },
      { source: '<test>', allowEphemeralListen: true },
    ),
  );
  for (const ip of sources)
    assert.equal(await bannerFrom(port, ip), first.get(ip), 'reload moved nobody');

  const list = await admin.call('GET', '/api/services/web/stick');
  assert.equal(list.status, 200);
  const body = list.json();
  assert.equal(body.total, 4);
  assert.deepEqual(new Set(body.entries.map((e: { key: string }) => e.key)), new Set(sources));
  const one = await admin.call('GET', '/api/services/web/stick/127.0.0.11');
  assert.equal(
    one.json().entries[0].backend,
    addr(ports[first.get('127.0.0.11') === 'A' ? 0 : 1] as number),
  );
  assert.equal((await admin.call('DELETE', '/api/services/web/stick/127.0.0.11')).status, 200);
  assert.equal((await admin.call('GET', '/api/services/web/stick/127.0.0.11')).status, 404);
  assert.equal((await admin.call('DELETE', '/api/services/web/stick/127.0.0.11')).status, 404);
  assert.equal((await admin.call('PUT', '/api/services/web/stick')).status, 405);
  const m = await admin.metrics();
  assert.equal(value(m, 'blitz_lb_stick_entries{service="web"}'), 3);
  assert.equal(value(m, 'blitz_lb_stick_misses_total{service="web"}'), 4);
  assert.equal(value(m, 'blitz_lb_stick_hits_total{service="web"}'), 12);
  assert.equal(value(m, 'blitz_lb_stick_moves_total{service="web"}'), 0);
  assert.equal((await admin.call('DELETE', '/api/services/web/stick')).json().removed, 3);
});

test('[cluster] redis password: never shown by /api/config', async (t) => {
  const { configView } = await import('../src/admin/config-view.js');
  const c = parseConfig(
    { ...svc(['127.0.0.1:1']), cluster: { redis: 'redis://user:hunter22@127.0.0.1:6379' } },
    { allowEphemeralListen: true },
  );
  const text = JSON.stringify(configView(c));
  assert.doesNotMatch(text, /hunter22/);
  assert.match(text, /redis:\/\/user:\(redacted\)@127\.0\.0\.1:6379/);
  void t;
});

test('stick on = "sni": clients asking for the same name reach the same backend, whatever their address', async (t) => {
  const { captureHello } = await import('./helpers/hello.js');
  const ports = [await bannerServer(t, 'A'), await bannerServer(t, 'B')];
  const lb = await startLb(
    t,
    svc(ports.map(addr), { sni: ['*'], balance: 'round-robin', stick: { on: 'sni' } }),
  );
  const port = lb.address('web').port;
  const names = ['one.test', 'two.test', 'three.test', 'four.test'];
  const hellos = new Map<string, Buffer>();
  for (const n of names) hellos.set(n, await captureHello({ servername: n }));
  const via = async (name: string, from: string): Promise<string> => {
    const c = connect({ port, host: '127.0.0.1', localAddress: from });
    c.on('error', () => {});
    c.write(hellos.get(name) as Buffer);
    const body = (await readAll(c)).toString();
    c.destroy();
    return body;
  };
  const first = new Map<string, string>();
  for (const n of names) first.set(n, await via(n, '127.0.0.71'));
  assert.deepEqual(new Set(first.values()), new Set(['A', 'B']));
  for (const from of ['127.0.0.72', '127.0.0.73'])
    for (const n of [...names].reverse())
      assert.equal(await via(n, from), first.get(n), `${n} from ${from}`);
  const keys = [...(lb.service('web').sticky?.table.entries() ?? [])].map((e) => e.key);
  assert.deepEqual(new Set(keys), new Set(names));
});
