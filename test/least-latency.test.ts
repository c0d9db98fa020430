import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import { type TestContext, test } from 'node:test';
import { createServer as createTlsServer } from 'node:tls';
import type { Backend } from '../src/backend/backend.js';
import { createStrategy } from '../src/balancer/index.js';
import { LeastLatency } from '../src/balancer/least-latency.js';
import { parseConfig } from '../src/config/schema.js';
import { backendConfig, ManualClock, seeded, setOf, writable } from './helpers/backends.js';
import { makePki, type Pair } from './helpers/pki.js';
import { addr, listen, openClient, startLb, svc } from './helpers/servers.js';

/** A least-latency strategy over backends a, b, c (ports 1, 2, 3; `only` the first two) with a seeded draw. */
function setup(extra: Record<string, Partial<Parameters<typeof backendConfig>[1]>> = {}, only = 3) {
  const names = ['a', 'b', 'c'].slice(0, only);
  const set = setOf(names.map((n, i) => backendConfig(i + 1, extra[n] ?? {})));
  const s = createStrategy('least-latency', { rng: seeded(7), latencyDecayMs: 10_000 });
  assert.ok(s instanceof LeastLatency);
  s.update(set.candidates);
  const [a, b, c] = set.all as [Backend, Backend, Backend | undefined];
  const clock = new ManualClock();
  const ctx = { clientIp: '10.0.0.1', tried: [] as Backend[], now: clock.now() };
  const name = (x: Backend | undefined) => (x === a ? 'a' : x === b ? 'b' : x === c ? 'c' : '-');
  return { set, s, a, b, c, clock, ctx, name };
}

test('least-latency: a backend with no sample is tried first, then passed over while its first dial is open', () => {
  const { set, s, a, b, c, clock, ctx, name } = setup();
  assert.ok(c);
  s.observe(a, 1, clock.now());
  s.observe(b, 1, clock.now());
  // c, unmeasured, costs 0 while idle: it wins the first comparison it is drawn into.
  let picked = s.pick(ctx);
  while (picked !== c) {
    assert.notEqual(picked, undefined);
    picked = s.pick(ctx);
  }
  set.reserve(c, ctx.now);
  // Open and still unmeasured: a penalty, so no burst piles onto it.
  for (let i = 0; i < 200; i++) assert.notEqual(name(s.pick(ctx)), 'c');
});

test('least-latency: a backend 20 ms slower loses every comparison; its estimate is a peak that decays with latency_decay', () => {
  const { s, a, b, c, clock, ctx, name } = setup();
  assert.ok(c);
  const now = clock.now();
  s.observe(a, 0.2, now);
  s.observe(b, 0.3, now);
  s.observe(c, 20.2, now);
  const n: Record<string, number> = { a: 0, b: 0, c: 0 };
  for (let i = 0; i < 1000; i++) n[name(s.pick(ctx))]++;
  assert.equal(n.c, 0);
  assert.ok((n.a as number) > 300 && (n.b as number) > 300, JSON.stringify(n));
  // A peak replaces the estimate at once; a lower sample soon after barely moves it.
  s.observe(a, 50, now);
  assert.equal(s.estimate(a, now), 50);
  clock.advance(100);
  s.observe(a, 1, clock.now());
  const after = s.estimate(a, clock.now()) as number;
  assert.ok(after > 49 && after < 50, String(after));
  // Unmeasured for five time constants: e^-5 of it is left, and it is tried again.
  clock.advance(50_000);
  const decayed = s.estimate(c, clock.now()) as number;
  assert.ok(Math.abs(decayed - 20.2 * Math.exp(-5.01)) < 0.01, String(decayed));
  assert.equal(s.estimate(backendConfig(9) as unknown as Backend, clock.now()), null);
});

test('least-latency: weights scale the cost, so equally fast backends hold open sessions 3:1 for weights 3:1', () => {
  const { set, s, a, b, clock, ctx } = setup({ a: { weight: 3 }, b: { weight: 1 } }, 2);
  for (const x of [a, b]) s.observe(x, 1, clock.now());
  for (let i = 0; i < 400; i++) set.reserve(s.pick(ctx) as Backend, ctx.now);
  assert.ok(Math.abs(a.active / b.active - 3) < 0.1, `${a.active}:${b.active}`);
});

test('least-latency: slow start applies: a backend just back up costs 10x until it ramps', () => {
  const { set, s, a, b, clock, ctx } = setup({ a: { slowStartMs: 60_000 } }, 2);
  for (const x of [a, b]) s.observe(x, 1, clock.now());
  writable(a).upSince = clock.now();
  for (let i = 0; i < 220; i++) set.reserve(s.pick(ctx) as Backend, ctx.now);
  // Effective weight 0.1 against 1: about one session in eleven.
  assert.ok(a.active >= 18 && a.active <= 22, `${a.active}:${b.active}`);
  // Ramped: the next sessions go to it until both hold as many.
  clock.advance(60_000);
  ctx.now = clock.now();
  for (let i = 0; i < 200; i++) set.reserve(s.pick(ctx) as Backend, ctx.now);
  assert.ok(Math.abs(a.active - b.active) <= 1, `${a.active}:${b.active}`);
});

test('least-latency config: latency_decay is checked, and refused beside another balance', () => {
  const base = (extra: Record<string, unknown>) =>
    svc(['127.0.0.1:9001'], { listen: '127.0.0.1:8080', ...extra });
  const c = parseConfig(base({ balance: 'least-latency', latency_decay: '30s' }));
  assert.equal(c.services[0]?.latencyDecayMs, 30_000);
  assert.equal(parseConfig(base({ balance: 'least-latency' })).services[0]?.latencyDecayMs, 10_000);
  assert.throws(
    () => parseConfig(base({ balance: 'round-robin', latency_decay: '5s' })),
    /services\.web\.latency_decay: applies to balance = "least-latency" only; this service balances by "round-robin"/,
  );
  assert.throws(
    () => parseConfig(base({ balance: 'least-latency', latency_decay: '5ms' })),
    /services\.web\.latency_decay: must be/,
  );
  assert.throws(
    () => parseConfig(base({ balance: 'least-latency', latency_decay: 'soon' })),
    /services\.web\.latency_decay: /,
  );
});

/**
 * A TLS backend that names itself once the handshake is done. `delayMs`: the
 * TCP connection waits that long before the TLS server reads the ClientHello,
 * so this backend's connects (TCP + handshake, what backend_tls dials measure)
 * take that much longer: a slow host, without any shaping of loopback.
 */
async function tlsNamed(
  t: TestContext,
  pair: Pair,
  name: string,
  delayMs: number,
): Promise<number> {
  const tlsServer = createTlsServer({ key: pair.key, cert: pair.cert }, (s) => {
    s.on('error', () => {});
    s.end(name);
  });
  const front = createNetServer((sock: Socket) => {
    sock.on('error', () => {});
    setTimeout(() => tlsServer.emit('connection', sock), delayMs);
  });
  return listen(t, front);
}

async function sessionsTo(
  port: number,
  total: number,
  parallel: number,
): Promise<Record<string, number>> {
  const n: Record<string, number> = {};
  let started = 0;
  const one = async (): Promise<void> => {
    while (started < total) {
      started++;
      const c = await openClient(port);
      const chunks: Buffer[] = [];
      c.on('data', (d: Buffer) => chunks.push(d));
      c.end();
      await new Promise((r) => c.once('close', r));
      const who = Buffer.concat(chunks).toString();
      n[who] = (n[who] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: parallel }, one));
  return n;
}

for (const pool of [0, 2]) {
  test(`least-latency over real connects (backend_tls, pool min_idle ${pool}): a backend 20 ms slower to connect gets well under its third of 300 sessions`, async (t) => {
    const pki = makePki(t);
    const ports = [
      await tlsNamed(t, pki.server, 'fast1', 0),
      await tlsNamed(t, pki.server, 'fast2', 0),
      await tlsNamed(t, pki.server, 'slow', 20),
    ];
    const lb = await startLb(
      t,
      svc(ports.map(addr), {
        balance: 'least-latency',
        // Short, so the first connects' warm-up peaks (JIT, first handshake) and the spikes of a
        // busy test machine (a fast handshake now and then takes 20-50 ms here) fade within the test.
        latency_decay: '250ms',
        backend_tls: { ca: pki.ca.certFile, servername: 'backend.test' },
        pool: { min_idle: pool },
      }),
    );
    const n = await sessionsTo(lb.address('web').port, 300, 1);
    const slow = n.slow ?? 0;
    assert.equal((n.fast1 ?? 0) + (n.fast2 ?? 0) + slow, 300, JSON.stringify(n));
    // Round-robin gives it 100. Measured here: 6-12 % on a quiet machine, up to 20 % at load 10
    // on 2 cores, where fast handshakes spike past 20 ms themselves (see docs/balancing.md).
    assert.ok(slow < 75, `slow got ${slow} of 300: ${JSON.stringify(n)}`);
    assert.ok((n.fast1 ?? 0) > 60 && (n.fast2 ?? 0) > 60, JSON.stringify(n));
  });
}

test('least-latency over lb.request(): a backend answering 20 ms later gets well under its third of 300 requests (one at a time)', async (t) => {
  const server = (name: string, delayMs: number) =>
    listen(
      t,
      createHttpServer((req, res) => {
        req.resume();
        setTimeout(() => res.end(name), delayMs);
      }) as unknown as Parameters<typeof listen>[1],
    );
  const ports = [await server('fast1', 0), await server('fast2', 0), await server('slow', 20)];
  const lb = await startLb(
    t,
    svc(ports.map(addr), { balance: 'least-latency', latency_decay: '250ms' }),
  );
  const n: Record<string, number> = {};
  let started = 0;
  const one = async (): Promise<void> => {
    while (started < 300) {
      started++;
      const who = (await lb.request('web', { path: '/' })).text();
      n[who] = (n[who] ?? 0) + 1;
    }
  };
  await one();
  const slow = n.slow ?? 0;
  // As above: round-robin gives it 100; 1-5 % measured on a quiet machine.
  assert.ok(slow < 75, `slow got ${slow} of 300: ${JSON.stringify(n)}`);
  assert.ok((n.fast1 ?? 0) > 60 && (n.fast2 ?? 0) > 60, JSON.stringify(n));
});

test('least-latency under routes: a route group learns from its own backends’ samples', async () => {
  const { LoadBalancer } = await import('../src/load-balancer.js');
  const cfg = parseConfig(
    {
      services: {
        web: {
          listen: '127.0.0.1:0',
          balance: 'least-latency',
          health: { kind: 'none' },
          pool: { min_idle: 0 },
          backends: [
            { address: '127.0.0.1:9001', name: 'a' },
            { address: '127.0.0.1:9002', name: 'b' },
            { address: '127.0.0.1:9003', name: 'c' },
          ],
          route: [{ source: ['10.0.0.0/8'], backends: ['a', 'b', 'c'] }],
        },
      },
    },
    { allowEphemeralListen: true },
  );
  const lb = new LoadBalancer(cfg);
  const s = lb.service('web');
  const [a, b, c] = s.backends.all as [Backend, Backend, Backend];
  const now = Date.now();
  s.strategy.observe?.(a, 0.2, now);
  s.strategy.observe?.(b, 0.3, now);
  s.strategy.observe?.(c, 20.2, now);
  const n = new Map<Backend | undefined, number>();
  for (let i = 0; i < 500; i++) {
    const ctx = {
      clientIp: '10.1.2.3',
      tried: [] as Backend[],
      now,
      localPort: 0,
      serverName: null,
      alpn: null,
      route: -2,
      routeName: null,
    };
    const picked = s.strategy.pick(ctx);
    assert.equal(ctx.routeName, 'route[0]', 'the client took the route');
    n.set(picked, (n.get(picked) ?? 0) + 1);
  }
  assert.equal(n.get(c) ?? 0, 0, 'the slow backend loses every comparison inside the group');
  assert.ok((n.get(a) ?? 0) > 100 && (n.get(b) ?? 0) > 100);
});
