import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { createRegistry } from '../src/admin/metrics.js';
import { servicesView } from '../src/admin/views.js';
import { effectiveWeight } from '../src/backend/backend.js';
import { cfgOf } from './helpers/config.js';
import {
  answering,
  captured,
  discovering,
  metric,
  namedOnOnePort,
  namedServer,
  session,
  waitForBackends,
} from './helpers/discovery.js';
import { dnsServer } from './helpers/dns-server.js';
import { readBytes, startLb, waitFor } from './helpers/servers.js';

const NAME = 'web.test.internal';

test('dns: A and AAAA records are the backends; one that leaves drains, its open session carries on, then it goes', async (t) => {
  const dns = await dnsServer(t);
  const [a, b, c] = await namedOnOnePort(t, ['127.0.0.2', '127.0.0.3', '::1']);
  if (!a || !b || !c) throw new Error('backends');
  dns.set(NAME, [
    { type: 'A', address: a.host, ttl: 1 },
    { type: 'A', address: b.host, ttl: 1 },
    { type: 'AAAA', address: c.host, ttl: 1 },
  ]);
  const lb = await startLb(
    t,
    discovering({
      kind: 'dns',
      name: NAME,
      port: a.port,
      resolver: dns.address,
      min_ttl: '50ms',
    }),
  );
  await waitForBackends(lb, [a.address, b.address, c.address]);
  const port = lb.address('web').port;
  assert.deepEqual(
    [...(await answering(port, 9))].sort(),
    [a.address, b.address, c.address].sort(),
    'every discovered backend serves',
  );

  // A session on b, which then leaves the DNS answer.
  let onB: Awaited<ReturnType<typeof session>> | null = null;
  while (!onB) {
    const s = await session(port);
    if (s.backend === b.address) onB = s;
    else s.client.destroy();
  }
  const gone = once(lb.service('web').backends, 'removed');
  dns.set(NAME, [
    { type: 'A', address: a.host, ttl: 1 },
    { type: 'AAAA', address: c.host, ttl: 1 },
  ]);
  await waitFor(
    () => lb.service('web').backends.get(b.address)?.state === 'draining',
    5000,
    'b drained at the next resolution (TTL 1s)',
  );
  onB.client.write('still here');
  assert.equal((await readBytes(onB.client, 10)).toString(), 'still here');
  assert.ok(!(await answering(port, 6)).has(b.address), 'no new session goes to b');
  assert.equal(b.open.size, 1, 'the session on b is open');
  const view = servicesView(lb).services[0]?.discovery;
  assert.equal(view?.backends, 2);
  assert.equal(view?.leaving, 1);

  onB.client.end();
  const [removed] = (await gone) as [{ address: string }];
  assert.equal(removed.address, b.address, 'b removed once its last session ended');
  await waitForBackends(lb, [a.address, c.address]);
});

test('dns: re-resolved at the TTL, clamped by max_ttl and min_ttl, and at least every interval', {
  timeout: 30_000,
}, async (t) => {
  const dns = await dnsServer(t);
  const a = await namedServer(t, '127.0.0.2');
  const gaps = async (n: number): Promise<number[]> => {
    const at: number[] = [];
    for (let i = 0; i <= n; i++) at.push((await dns.nextQuery(NAME)).at);
    return at.slice(1).map((x, i) => x - (at[i] as number));
  };
  const start = (extra: Record<string, unknown>) =>
    startLb(
      t,
      discovering({
        kind: 'dns',
        name: NAME,
        port: a.port,
        family: 'ipv4',
        resolver: dns.address,
        ...extra,
      }),
    );

  // A TTL of an hour, a ceiling of 150 ms: asked again every 150 ms.
  dns.set(NAME, [{ type: 'A', address: a.host, ttl: 3600 }]);
  const ceiling = await start({ max_ttl: '150ms', min_ttl: '0ms' });
  for (const g of await gaps(3)) assert.ok(g >= 140 && g < 1000, `ceiling gap ${g}ms`);
  await ceiling.close(0);

  // A TTL of 0, a floor of 300 ms: never asked more often than that.
  dns.set(NAME, [{ type: 'A', address: a.host, ttl: 0 }]);
  const floor = await start({ min_ttl: '300ms' });
  for (const g of await gaps(3)) assert.ok(g >= 290 && g < 1500, `floor gap ${g}ms`);
  await floor.close(0);

  // The record's TTL, between the two: a TTL of 1 s is asked again after 1 s.
  dns.set(NAME, [{ type: 'A', address: a.host, ttl: 1 }]);
  const ttl = await start({ min_ttl: '0ms' });
  for (const g of await gaps(2)) assert.ok(g >= 990 && g < 2500, `TTL gap ${g}ms`);
  await ttl.close(0);

  // An hour's TTL, but interval = 200ms: asked every 200 ms anyway.
  dns.set(NAME, [{ type: 'A', address: a.host, ttl: 3600 }]);
  await start({ interval: '200ms' });
  for (const g of await gaps(2)) assert.ok(g >= 190 && g < 1500, `interval gap ${g}ms`);
});

test('dns: NXDOMAIN, no answer in time and an empty answer keep the last list, counted and logged', async (t) => {
  const dns = await dnsServer(t);
  const [a, b] = await namedOnOnePort(t, ['127.0.0.2', '127.0.0.3']);
  if (!a || !b) throw new Error('backends');
  const records = [
    { type: 'A' as const, address: a.host, ttl: 0 },
    { type: 'A' as const, address: b.host, ttl: 0 },
  ];
  dns.set(NAME, records);
  const { logger, lines } = captured('warn');
  const raw = discovering({
    kind: 'dns',
    name: NAME,
    port: a.port,
    family: 'ipv4',
    resolver: dns.address,
    min_ttl: '20ms',
    interval: '100ms',
    timeout: '150ms',
  });
  const lb = await startLb(t, raw, { logger });
  const svc = lb.service('web');
  const both = [a.address, b.address];
  await waitForBackends(lb, both);
  const status = () => svc.discoveryStatus;
  const failAndKeep = async (why: RegExp): Promise<void> => {
    const before = status()?.failures ?? 0;
    await waitFor(() => (status()?.failures ?? 0) > before, 5000, `a failure (${why})`);
    assert.match(status()?.lastError ?? '', why);
    assert.deepEqual(
      svc.backends.all.map((x) => [x.address, x.state]),
      both.map((x) => [x, 'up']),
      'the last good list stays, in rotation',
    );
    assert.deepEqual([...(await answering(lb.address('web').port, 4))].sort(), both.sort());
  };
  const recover = () => waitFor(() => status()?.failing === 0, 5000, 'an answer again');

  dns.zone.delete(NAME);
  await failAndKeep(/NXDOMAIN/);
  dns.set(NAME, records);
  await recover();

  dns.drop = true;
  await failAndKeep(/timeout|timed out/);
  dns.drop = false;
  await recover();

  // An answer late but within the timeout is an answer.
  dns.delayMs = 60;
  const failures = status()?.failures;
  await dns.nextQuery(NAME);
  await dns.nextQuery(NAME);
  assert.equal(status()?.failures, failures, 'a delayed answer is no failure');
  dns.delayMs = 0;

  dns.set(NAME, []);
  await failAndKeep(/empty answer/);

  const text = await createRegistry(lb).metrics();
  const counted = metric(text, 'blitz_lb_discovery_failures_total{service="web",kind="dns"}');
  assert.ok((counted ?? 0) >= 3, `failures counted: ${counted}`);
  assert.equal(metric(text, 'blitz_lb_discovery_backends{service="web",kind="dns"}'), 2);
  const last = metric(
    text,
    'blitz_lb_discovery_last_success_timestamp_seconds{service="web",kind="dns"}',
  );
  assert.ok(last !== undefined && Math.abs(last - Date.now() / 1000) < 60, `last success ${last}`);
  const warned = lines.filter((l) => l.msg === 'discovery failed; keeping the last good list');
  assert.ok(warned.length >= 1, 'a failure is logged');
  assert.ok(warned.length < (status()?.failures ?? 0), 'and rate-limited');

  // allow_empty = true: an empty answer is an answer, and the discovered backends drain.
  const web = (raw.services as Record<string, Record<string, unknown>>).web as Record<
    string,
    unknown
  >;
  await lb.reload(
    cfgOf({
      ...raw,
      services: {
        web: { ...web, discovery: { ...(web.discovery as object), allow_empty: true } },
      },
    }),
  );
  await waitForBackends(lb, []);
});

test('dns: a backend found later ramps up through slow_start and gets its warm pool', async (t) => {
  const dns = await dnsServer(t);
  const [a, b] = await namedOnOnePort(t, ['127.0.0.2', '127.0.0.3']);
  if (!a || !b) throw new Error('backends');
  dns.set(NAME, [{ type: 'A', address: a.host, ttl: 0 }]);
  const lb = await startLb(
    t,
    discovering(
      {
        kind: 'dns',
        name: NAME,
        port: a.port,
        family: 'ipv4',
        resolver: dns.address,
        min_ttl: '50ms',
        backend: { slow_start: '1h', weight: 10 },
      },
      { pool: { min_idle: 1 } },
    ),
  );
  const svc = lb.service('web');
  await waitForBackends(lb, [a.address]);
  dns.set(NAME, [
    { type: 'A', address: a.host, ttl: 0 },
    { type: 'A', address: b.host, ttl: 0 },
  ]);
  await waitForBackends(lb, [a.address, b.address]);
  const ba = svc.backends.get(a.address);
  const bb = svc.backends.get(b.address);
  if (!ba || !bb) throw new Error('backends');
  const now = performance.now();
  assert.equal(ba.weight, 10, 'the backend template applies');
  assert.equal(effectiveWeight(ba, now), 10, 'the first answer is the starting set: full weight');
  assert.ok(effectiveWeight(bb, now) < 2, `b joined at slow start: ${effectiveWeight(bb, now)}`);
  await waitFor(() => svc.pool.idleFor(bb) === 1, 5000, "b's warm socket");
});

test('srv: targets, ports and weights from the records; the next priority is the backup tier', async (t) => {
  const dns = await dnsServer(t);
  const hosts = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];
  const [a, b, c, d] = await Promise.all(hosts.map((h) => namedServer(t, h)));
  if (!a || !b || !c || !d) throw new Error('backends');
  const srv = '_echo._tcp.test.internal';
  const target = (n: string, ip: string) =>
    dns.set(`${n}.test.internal`, [{ type: 'A', address: ip, ttl: 60 }]);
  target('a', a.host);
  target('b', b.host);
  target('c', c.host);
  target('d', d.host);
  const rec = (prio: number, weight: number, port: number, n: string) => ({
    type: 'SRV' as const,
    priority: prio,
    weight,
    port,
    target: `${n}.test.internal`,
    ttl: 60,
  });
  dns.set(srv, [
    rec(10, 1, a.port, 'a'),
    rec(10, 3, b.port, 'b'),
    rec(20, 0, c.port, 'c'),
    rec(30, 5, d.port, 'd'),
  ]);
  const lb = await startLb(
    t,
    discovering({ kind: 'srv', name: srv, resolver: dns.address, interval: '200ms' }),
  );
  await waitForBackends(lb, [a.address, b.address, c.address]);
  const s = lb.service('web');
  const row = (x: { address: string }) => {
    const be = s.backends.get(x.address);
    return [be?.weight, be?.backup];
  };
  assert.deepEqual(row(a), [1, false]);
  assert.deepEqual(row(b), [3, false]);
  assert.deepEqual(row(c), [1, true], 'priority 20: backup; SRV weight 0 is weight 1');
  assert.deepEqual(
    [...(await answering(lb.address('web').port, 8))].sort(),
    [a.address, b.address].sort(),
    'primaries serve',
  );

  // The primaries' targets leave: the backup tier serves.
  dns.set(srv, [rec(20, 0, c.port, 'c'), rec(30, 5, d.port, 'd')]);
  await waitForBackends(lb, [c.address, d.address]);
  assert.deepEqual(row(c), [1, false], 'the lowest priority left is the primary tier now');
  assert.deepEqual(row(d), [5, true]);
  assert.deepEqual([...(await answering(lb.address('web').port, 4))], [c.address]);
});

test('srv: more targets than the limit fail before any is resolved; the last good list stays', async (t) => {
  const dns = await dnsServer(t);
  const a = await namedServer(t, '127.0.0.2');
  const srv = '_echo._tcp.test.internal';
  dns.set('a.test.internal', [{ type: 'A', address: a.host, ttl: 60 }]);
  const rec = (port: number, target: string) => ({
    type: 'SRV' as const,
    priority: 10,
    weight: 1,
    port,
    target,
    ttl: 60,
  });
  dns.set(srv, [rec(a.port, 'a.test.internal')]);
  const lb = await startLb(
    t,
    discovering({ kind: 'srv', name: srv, resolver: dns.address, interval: '200ms' }),
  );
  await waitForBackends(lb, [a.address]);
  const s = lb.service('web');
  dns.set(
    srv,
    Array.from({ length: 1001 }, (_, i) => rec(a.port, `t${i}.x`)),
  );
  await waitFor(() => (s.discoveryStatus?.failing ?? 0) > 0, 5000, 'a failure');
  assert.match(s.discoveryStatus?.lastError ?? '', /1001 SRV targets, over the limit of 1000/);
  assert.equal(
    dns.queries.filter((q) => q.name.endsWith('.x')).length,
    0,
    'no target was looked up',
  );
  assert.deepEqual(
    s.backends.all.map((b) => b.address),
    [a.address],
  );
});

test('srv: targets whose addresses add up to more than the limit fail as a whole; the last good list stays', async (t) => {
  const dns = await dnsServer(t);
  const a = await namedServer(t, '127.0.0.2');
  const srv = '_echo._tcp.test.internal';
  dns.set('a.test.internal', [{ type: 'A', address: a.host, ttl: 60 }]);
  const rec = (target: string) => ({
    type: 'SRV' as const,
    priority: 10,
    weight: 1,
    port: a.port,
    target,
    ttl: 60,
  });
  dns.set(srv, [rec('a.test.internal')]);
  const lb = await startLb(
    t,
    discovering({ kind: 'srv', name: srv, resolver: dns.address, interval: '200ms' }),
  );
  await waitForBackends(lb, [a.address]);
  const s = lb.service('web');
  // Three targets of 3,400 A records each (one UDP answer holds about 4,000): 10,200 backends.
  for (let n = 0; n < 3; n++)
    dns.set(
      `big${n}.test.internal`,
      Array.from({ length: 3400 }, (_, i) => ({
        type: 'A' as const,
        address: `10.${n}.${i >> 8}.${i & 255}`,
        ttl: 60,
      })),
    );
  dns.set(
    srv,
    [0, 1, 2].map((n) => rec(`big${n}.test.internal`)),
  );
  await waitFor(() => (s.discoveryStatus?.failing ?? 0) > 0, 5000, 'a failure');
  assert.match(s.discoveryStatus?.lastError ?? '', /10200 backends, over the limit of 10000/);
  assert.deepEqual(
    s.backends.all.map((b) => b.address),
    [a.address],
  );
});

test('srv: backend names are the target ("a.test.internal"), "target:port" when a target serves several ports, and the address when a target has several addresses on one port', async (t) => {
  const dns = await dnsServer(t);
  const a = await namedServer(t, '127.0.0.2');
  // Target "e": one address, two ports. Target "f": two addresses, one port.
  const e1 = await namedServer(t, '127.0.0.3');
  const e2 = await namedServer(t, '127.0.0.3');
  const [f1, f2] = await namedOnOnePort(t, ['127.0.0.4', '127.0.0.5']);
  if (!f1 || !f2) throw new Error('backends');
  const srv = '_echo._tcp.test.internal';
  dns.set('a.test.internal', [{ type: 'A', address: a.host, ttl: 60 }]);
  dns.set('e.test.internal', [{ type: 'A', address: e1.host, ttl: 60 }]);
  dns.set('f.test.internal', [
    { type: 'A', address: f1.host, ttl: 60 },
    { type: 'A', address: f2.host, ttl: 60 },
  ]);
  const rec = (port: number, n: string) => ({
    type: 'SRV' as const,
    priority: 10,
    weight: 1,
    port,
    target: `${n}.test.internal`,
    ttl: 60,
  });
  dns.set(srv, [rec(a.port, 'a'), rec(e1.port, 'e'), rec(e2.port, 'e'), rec(f1.port, 'f')]);
  const lb = await startLb(
    t,
    discovering({ kind: 'srv', name: srv, resolver: dns.address, interval: '200ms' }),
  );
  const all = [a, e1, e2, f1, f2].map((x) => x.address);
  await waitForBackends(lb, all);
  const s = lb.service('web');
  const names = Object.fromEntries(all.map((x) => [x, s.backends.get(x)?.name]));
  assert.deepEqual(names, {
    [a.address]: 'a.test.internal',
    [e1.address]: `e.test.internal:${e1.port}`,
    [e2.address]: `e.test.internal:${e2.port}`,
    [f1.address]: f1.address,
    [f2.address]: f2.address,
  });
  // The names label the metrics.
  const text = await createRegistry(lb).metrics();
  assert.match(text, /blitz_lb_backend_info\{[^}]*backend="a\.test\.internal"/);
});
