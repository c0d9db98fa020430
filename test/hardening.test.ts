/**
 * Regressions for what adversarial testing found (issue 13): each test names
 * its item and fails on the code before the fix.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { closeSync, openSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger } from '../src/logger.js';
import { FdBudget } from '../src/proxy/fd-budget.js';
import { ManualClock } from './helpers/backends.js';
import { cfgOf } from './helpers/config.js';
import {
  addr,
  blackhole,
  echoServer,
  ended,
  httpGet,
  httpServer,
  listen,
  openClient,
  readAll,
  readBytes,
  refusedPort,
  scriptedServer,
  startLb,
  svc,
  waitFor,
} from './helpers/servers.js';

/** A pino logger whose lines a test can read. */
function captured(level: 'trace' | 'debug' | 'info' | 'warn' | 'silent' = 'trace') {
  const lines: { level: number; msg: string; [k: string]: unknown }[] = [];
  const logger = createLogger(level, {
    write: (l: string) => {
      lines.push(JSON.parse(l));
    },
  });
  return { logger, lines };
}

test('13.1 pool: a backend that closes idle connections at once gets a few pool connects a second, a warning and a metric', async (t) => {
  let accepted = 0;
  const port = await scriptedServer(t, (s) => {
    accepted++;
    s.destroy();
  });
  const { logger, lines } = captured('warn');
  const lb = await startLb(
    t,
    svc([addr(port)], { pool: { min_idle: 2, max_idle: 4 }, retry_delay: '100ms' }),
    { logger },
  );
  const s = lb.service('web');
  await waitFor(() => s.pool.counters.earlyCloses.closed >= 3, 3000, 'early closes counted');
  // A measurement window, not a wait for an event: the reconnect rate is the point.
  await sleep(1000);
  const before = accepted;
  await sleep(2000);
  const rate = (accepted - before) / 2;
  assert.ok(rate <= 3, `pool connects ${rate}/s after the first second (a storm is thousands)`);
  assert.equal(s.backends.all[0]?.healthy, true, 'not a health signal: real clients are served');
  const warn = lines.find((l) => /closes idle connections after ~\d+ ms/.test(l.msg));
  assert.ok(warn, 'a warning that says why');
  assert.ok(lines.filter((l) => /closes idle connections/.test(l.msg)).length <= 2, 'rate-limited');
  // Clients still get fresh dials (this backend closes them at once, as it did the pool's).
  const c = await openClient(lb.address('web').port);
  c.resume();
  await ended(c);
  c.destroy();
});

test('13.1 pool: a backend with an idle timeout shorter than idle_ttl: the warning gives the figure', async (t) => {
  const port = await scriptedServer(t, (s) => {
    s.resume();
    setTimeout(() => s.end(), 150);
  });
  const { logger, lines } = captured('warn');
  const lb = await startLb(t, svc([addr(port)], { pool: { min_idle: 1, max_idle: 1 } }), {
    logger,
  });
  await waitFor(
    () => lines.some((l) => /closes idle connections after ~1\d\d ms/.test(l.msg)),
    3000,
    'the warning with ~150 ms',
  );
  assert.ok(lb.service('web').pool.counters.earlyCloses.closed >= 1);
});

/**
 * Opens /dev/null until this process is out of descriptors, then frees `spare` of them.
 * `topUp()` takes again any descriptor freed since (a probe's socket that was open when the
 * descriptors ran out closes later, and the next probe would take its number).
 */
function exhaustDescriptors(spare: number): { release: () => void; topUp: () => void } {
  const held: number[] = [];
  const fill = (): void => {
    try {
      for (;;) held.push(openSync('/dev/null', 'r'));
    } catch (err) {
      assert.equal((err as NodeJS.ErrnoException).code, 'EMFILE');
    }
  };
  fill();
  for (let i = 0; i < spare; i++) closeSync(held.pop() as number);
  return {
    release: () => {
      for (const fd of held.splice(0)) closeSync(fd);
    },
    topUp: fill,
  };
}

test('13.2 the balancer’s own EMFILE on probes and dials is never counted against a backend', async (t) => {
  const be = await echoServer(t);
  // Probes: a backend probed every 50 ms, fall = 1, while this process is out of descriptors.
  const probed = await startLb(
    t,
    svc([addr(be)], {
      health: { kind: 'tcp', interval: '50ms', timeout: '500ms', fall: 1, rise: 1 },
      all_down: 'refuse',
    }),
    { fds: null },
  );
  const ps = probed.service('web');
  const pb = ps.backends.all[0];
  assert.ok(pb);
  await waitFor(() => pb.lastCheck?.ok === true, 3000, 'first probe');
  const out = exhaustDescriptors(0);
  try {
    await waitFor(
      () => {
        out.topUp();
        return (ps.localErrors.counts.EMFILE ?? 0) >= 3;
      },
      3000,
      'probes hitting EMFILE',
    );
  } finally {
    out.release();
  }
  assert.equal(pb.healthy, true, 'probes never marked it down');
  assert.equal(await httpGetEcho(probed.address('web').port), 'ok');
  // Its probes would take the descriptors the next phase counts on.
  await probed.close(0);

  // Dials: room for one client and its accepted socket, none for the dial.
  const dialled = await startLb(t, svc([addr(be)], { max_retries: 0, all_down: 'refuse' }), {
    fds: null,
  });
  const ds = dialled.service('web');
  const db = ds.backends.all[0];
  assert.ok(db);
  // The accept must get one of the two spare descriptors and the dial none. A descriptor this
  // process takes or frees in between (the phase before's sockets close late) moves the EMFILE
  // to the accept, where libuv closes the client unseen, or lets the dial through: such a try
  // dials nothing that fails, and is tried again.
  for (let tries = 0; tries < 5 && (ds.localErrors.counts.EMFILE ?? 0) === 0; tries++) {
    const { release } = exhaustDescriptors(2);
    try {
      const c = await openClient(dialled.address('web').port);
      c.resume();
      // Refused (the client ends), or its dial went through (a session on the backend).
      await waitFor(() => c.readableEnded || c.destroyed || db.active > 0, 3000, 'the client');
      c.destroy();
    } finally {
      release();
    }
    await waitFor(() => db.active === 0, 3000, 'the session to end');
  }
  const emfile = ds.localErrors.counts.EMFILE ?? 0;
  assert.ok(emfile >= 1, 'a dial met EMFILE');
  assert.equal(ds.counters.connectFailed, emfile, 'each such client was refused');
  assert.equal(db.dialFailuresTotal, 0, 'no dial failure counted against the backend');
  assert.equal(db.healthy, true);
  assert.equal(await httpGetEcho(dialled.address('web').port), 'ok', 'serves at once after');
});

async function httpGetEcho(port: number): Promise<string> {
  const c = await openClient(port);
  c.write('ok');
  const d = (await readBytes(c, 2)).toString();
  c.destroy();
  return d;
}

test('13.4 queue: a client that leaves while waiting frees its place at once', async (t) => {
  const held: Socket[] = [];
  const be = await scriptedServer(t, (s) => {
    held.push(s);
    s.pipe(s);
  });
  const lb = await startLb(
    t,
    svc([{ address: addr(be), max_connections: 1 }], { queue_size: 1, queue_timeout: '5s' }),
  );
  const s = lb.service('web');
  const port = lb.address('web').port;
  const first = await openClient(port);
  first.write('a');
  await readBytes(first, 1);
  const leaver = await openClient(port);
  await waitFor(() => s.counters.queued === 1, 2000, 'the leaver queued');
  leaver.destroy();
  await waitFor(() => s.activeSessions === 1, 2000, 'the leaver gone');
  // Its place is free: this one waits (not refused as "queue full") and is served when a slot frees.
  const next = await openClient(port);
  next.write('b');
  await waitFor(() => s.counters.queued === 2, 2000, 'the next client queued');
  assert.equal(s.counters.refusedQueueFull, 0);
  first.destroy();
  assert.equal((await readBytes(next, 1)).toString(), 'b');
  next.destroy();
});

test('13.5 a session cut at shutdown ends with a reset to the client, not a FIN', async (t) => {
  const be = await echoServer(t);
  const lb = await startLb(t, svc([addr(be)]));
  const c = await openClient(lb.address('web').port);
  c.write('x');
  await readBytes(c, 1);
  let sawEnd = false;
  c.on('end', () => {
    sawEnd = true;
  });
  const err = once(c, 'error');
  await lb.close(0);
  const [e] = (await err) as [NodeJS.ErrnoException];
  assert.equal(e.code, 'ECONNRESET');
  assert.equal(sawEnd, false, 'no clean end-of-stream first');
});

async function proxyLb(t: Parameters<typeof startLb>[0], extra: Record<string, unknown> = {}) {
  const be = await scriptedServer(t, (s) => {
    s.resume();
    s.end('served');
  });
  return startLb(
    t,
    svc([addr(be)], {
      accept_proxy: true,
      trusted_proxies: ['127.0.0.0/8'],
      send_proxy: 'v2',
      ...extra,
    }),
  );
}

test('13.6 a PROXY header with an IPv6 zone id (odd text after %) is refused, never a crash', async (t) => {
  const lb = await proxyLb(t);
  const s = lb.service('web');
  const port = lb.address('web').port;
  for (const src of ['fe80::1%1:2:3:4:5:6:7:8', 'fe80::1%eth0', '::1%::']) {
    const c = await openClient(port);
    c.end(`PROXY TCP6 ${src} ::1 40000 443\r\n`);
    c.resume();
    await ended(c);
    c.destroy();
  }
  assert.equal(s.counters.refusedProxy, 3);
  assert.equal(s.counters.sessionErrors, 0);
  const ok = await openClient(port);
  ok.end('PROXY TCP6 fe80::1 ::1 40000 443\r\n');
  assert.equal((await readAll(ok)).toString(), 'served', 'a plain link-local address is fine');
});

test('13.7 PROXY addresses are canonical: one client, one identity for the per-source limits', async (t) => {
  const lb = await proxyLb(t, { max_connections_per_source: 1 });
  const s = lb.service('web');
  const port = lb.address('web').port;
  const hold = async (header: string): Promise<Socket> => {
    const c = await openClient(port);
    c.write(header);
    return c;
  };
  const pairs = [
    [
      'PROXY TCP4 203.0.113.7 198.51.100.1 40000 443\r\n',
      'PROXY TCP6 ::ffff:203.0.113.7 ::1 40001 443\r\n',
    ],
    [
      'PROXY TCP6 2001:db8::1 ::1 40000 443\r\n',
      'PROXY TCP6 2001:DB8:0:0:0:0:0:1 ::1 40001 443\r\n',
    ],
  ];
  for (const [a, b] of pairs) {
    const first = await hold(a as string);
    assert.equal((await readBytes(first, 6)).toString(), 'served', 'the first is admitted');
    const before = s.counters.refusedSourceConnections;
    const second = await hold(b as string);
    second.resume();
    await ended(second);
    second.destroy();
    assert.equal(s.counters.refusedSourceConnections, before + 1, `${b} is ${a}`);
    first.destroy();
    await waitFor(() => s.activeSessions === 0, 2000, 'released');
  }
});

test('13.11 a reload that cannot bind changes nothing: removed services keep serving, added ones do not start', async (t) => {
  const a = await httpServer(t, 'a');
  const taken = createServer();
  const takenPort = await listen(t, taken);
  const webPort = await refusedPort();
  const apiPort = await refusedPort();
  const freePort = await refusedPort();
  const raw = (services: Record<string, number>) => ({
    log: { level: 'silent' },
    services: Object.fromEntries(
      Object.entries(services).map(([name, port]) => [
        name,
        { listen: `127.0.0.1:${port}`, backends: [addr(a)], health: { kind: 'none' } },
      ]),
    ),
  });
  const lb = await startLb(t, raw({ web: webPort, api: apiPort }));
  // Removes web, adds fresh, and moves api onto an address in use: the move fails last.
  await assert.rejects(lb.reload(cfgOf(raw({ fresh: freePort, api: takenPort }))), {
    code: 'LB_ERR_LISTEN',
  });
  assert.deepEqual(lb.serviceNames, ['web', 'api']);
  assert.equal(await httpGet(webPort), 'a', 'the service the reload would remove still serves');
  assert.equal(await httpGet(apiPort), 'a', 'the service it would move still serves where it was');
  await assert.rejects(
    openClient(freePort),
    /ECONNREFUSED/,
    'the service it would add never bound',
  );
});

test('13.12 renaming a service, or swapping two addresses, hands the listeners over', async (t) => {
  const a = await httpServer(t, 'a');
  const b = await httpServer(t, 'b');
  const p1 = await refusedPort();
  const p2 = await refusedPort();
  const raw = (services: Record<string, [number, number]>) => ({
    log: { level: 'silent' },
    services: Object.fromEntries(
      Object.entries(services).map(([name, [port, be]]) => [
        name,
        { listen: `127.0.0.1:${port}`, backends: [addr(be)], health: { kind: 'none' } },
      ]),
    ),
  });
  const lb = await startLb(t, raw({ web: [p1, a] }));
  const held = await openClient(p1);
  held.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  await readBytes(held, 10);
  assert.deepEqual(await lb.reload(cfgOf(raw({ site: [p1, a] }))), {
    added: ['site'],
    removed: ['web'],
    changed: [],
  });
  assert.equal(await httpGet(p1), 'a');
  held.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.ok((await readAll(held)).length > 0, 'the renamed service’s open session carries on');
  await lb.reload(cfgOf(raw({ site: [p1, a], api: [p2, b] })));
  await lb.reload(cfgOf(raw({ site: [p2, a], api: [p1, b] })));
  assert.equal(await httpGet(p1), 'b');
  assert.equal(await httpGet(p2), 'a');
});

test('13.13 a reload leaves a library user’s logger level alone', async (t) => {
  const a = await httpServer(t, 'a');
  const { logger, lines } = captured('silent');
  const base = svc([addr(a)]);
  const lb = await startLb(t, base, { logger });
  await lb.reload(cfgOf({ ...base, log: { level: 'info' } }));
  assert.equal(logger.level, 'silent');
  assert.deepEqual(lines, []);
  const follows = captured('warn');
  const lb2 = await startLb(t, base, { logger: follows.logger, followConfigLogLevel: true });
  await lb2.reload(cfgOf({ ...base, log: { level: 'info' } }));
  assert.equal(follows.logger.level, 'info', 'the CLI without --log-level follows the file');
});

test('13.14 runtime changes and reload: the file wins for what it says; drain and disable of listed backends stay', async (t) => {
  const a = await httpServer(t, 'a');
  const b = await httpServer(t, 'b');
  const c = await httpServer(t, 'c');
  const base = svc([addr(a), addr(b)]);
  const lb = await startLb(t, base);
  const s = lb.service('web');
  for (const other of [{}, { connect_timeout: '700ms' }]) {
    lb.setWeight('web', addr(a), 5);
    lb.drainBackend('web', addr(b));
    lb.addBackend('web', addr(c));
    const web = (base.services as Record<string, Record<string, unknown>>).web;
    await lb.reload(cfgOf({ ...base, services: { web: { ...web, ...other } } }));
    const what = JSON.stringify(other);
    assert.equal(s.backends.get(addr(a))?.weight, 1, `weight from the file (${what})`);
    assert.equal(s.backends.get(addr(b))?.draining, true, `drain kept (${what})`);
    assert.equal(s.backends.get(addr(c)), undefined, `runtime-added removed (${what})`);
    lb.enableBackend('web', addr(b));
  }
});

test('13.15 reloading health.kind from tcp to none gives a down backend its half-open trials', async (t) => {
  const a = await echoServer(t);
  const base = svc([addr(a)], { health: { kind: 'tcp', interval: '1h' } });
  const lb = await startLb(t, base);
  const s = lb.service('web');
  const b = s.backends.all[0];
  assert.ok(b);
  await waitFor(() => b.lastCheck !== null, 3000, 'first probe');
  s.backends.markDown(b, 'test');
  const web = (base.services as Record<string, Record<string, unknown>>).web;
  await lb.reload(
    cfgOf({ ...base, services: { web: { ...web, health: { kind: 'none', interval: '50ms' } } } }),
  );
  await waitFor(() => b.halfOpen, 2000, 'a half-open trial');
  assert.equal(await httpGetEcho(lb.address('web').port), 'ok');
  assert.equal(b.healthy, true, 'the trial closed the circuit');
});

test('13.16 a reloaded retry_delay reaches the pool’s refill backoff', async (t) => {
  const a = await echoServer(t);
  const base = svc([addr(a)], { retry_delay: '100ms', pool: { min_idle: 1 } });
  const lb = await startLb(t, base);
  assert.equal(lb.service('web').pool.refillBaseMs, 100);
  const web = (base.services as Record<string, Record<string, unknown>>).web;
  await lb.reload(cfgOf({ ...base, services: { web: { ...web, retry_delay: '2s' } } }));
  assert.equal(lb.service('web').pool.refillBaseMs, 2000);
});

test('13.20 an outage logs one warning a second, not one per refused client', async (t) => {
  const dead = await refusedPort();
  const { logger, lines } = captured('warn');
  const lb = await startLb(t, svc([addr(dead)], { max_retries: 0 }), { logger });
  const port = lb.address('web').port;
  await Promise.all(
    Array.from({ length: 30 }, async () => {
      const c = await openClient(port);
      c.resume();
      await ended(c);
      c.destroy();
    }),
  );
  const warned = lines.filter((l) => l.msg === 'session refused: no backend reachable');
  assert.equal(lb.service('web').counters.connectFailed, 30);
  assert.ok(warned.length >= 1 && warned.length <= 2, `${warned.length} warnings for 30 clients`);
});

test('13.2 a descriptor sample that fails for want of a descriptor refuses the client, never throws', () => {
  const clock = new ManualClock();
  const fds = new FdBudget(clock, 1_000_000);
  assert.equal(fds.admit(), true);
  const { release } = exhaustDescriptors(0);
  try {
    clock.advance(10_000);
    assert.equal(fds.admit(), false);
  } finally {
    release();
  }
  clock.advance(10_000);
  assert.equal(fds.admit(), true);
});

test('a half-open trial whose caller leaves mid-dial leaves the backend half-open for the next one', async (t) => {
  const hole = await blackhole(t);
  const lb = await startLb(
    t,
    svc([addr(hole)], {
      all_down: 'refuse',
      connect_timeout: '5s',
      health: { kind: 'none', interval: '50ms' },
    }),
  );
  const s = lb.service('web');
  const b = s.backends.all[0];
  assert.ok(b);
  s.backends.markDown(b, 'test');
  await waitFor(() => b.halfOpen, 2000, 'half-open');
  const ctl = new AbortController();
  const dial = lb.connect('web', { signal: ctl.signal });
  await waitFor(() => b.trialInFlight, 2000, 'the trial dial under way');
  ctl.abort();
  await assert.rejects(dial, { code: 'LB_ERR_ABORTED' });
  assert.equal(b.active, 0, 'the abort cancelled the dial and gave its slot back');
  assert.equal(b.trialInFlight, false);
  assert.deepEqual(s.backends.candidates, [b], 'back among the candidates for the next trial');
});

test('13.4 a queued client that sends its request and half-closes keeps its place; request and FIN reach the backend', async (t) => {
  const got: string[] = [];
  const be = await scriptedServer(t, (s) => {
    let body = '';
    s.on('data', (d: Buffer) => {
      body += d.toString();
    });
    s.on('end', () => {
      got.push(body);
      s.end(`reply to ${body}`);
    });
  });
  const lb = await startLb(
    t,
    svc([{ address: addr(be), max_connections: 1 }], { queue_size: 1, queue_timeout: '5s' }),
  );
  const s = lb.service('web');
  const port = lb.address('web').port;
  const holder = await openClient(port);
  await waitFor(() => s.backends.all[0]?.active === 1, 2000, 'the holder on the backend');
  const waiter = await openClient(port);
  waiter.end('request');
  await waitFor(() => s.counters.queued === 1, 2000, 'the waiter queued');
  // Its half-close was read while it waited, and did not take it out of the queue.
  await new Promise((r) => setImmediate(r));
  assert.equal(s.activeSessions, 2);
  const reply = readAll(waiter);
  holder.end('first');
  assert.equal((await reply).toString(), 'reply to request');
  assert.deepEqual(got, ['first', 'request']);
});

test('13.4 a removed service still times out its queue', async (t) => {
  const be = await echoServer(t);
  const base = svc([{ address: addr(be), max_connections: 1 }], {
    queue_size: 5,
    queue_timeout: '300ms',
  });
  const lb = await startLb(t, base);
  const port = lb.address('web').port;
  const holder = await openClient(port);
  holder.write('h');
  await readBytes(holder, 1);
  const waiter = await openClient(port);
  await waitFor(() => lb.service('web').counters.queued === 1, 2000, 'queued');
  // The reload replaces service web with service api.
  const api = svc([addr(await echoServer(t))]);
  await lb.reload(
    cfgOf({ ...api, services: { api: (api.services as Record<string, unknown>).web } }),
  );
  waiter.resume();
  let refused = false;
  void ended(waiter).then(() => {
    refused = true;
  });
  await waitFor(() => refused, 2000, 'the waiter refused at queue_timeout');
  assert.equal(holder.destroyed, false);
  holder.destroy();
});
