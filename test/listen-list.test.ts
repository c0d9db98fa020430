import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { parseConfig } from '../src/config/schema.js';
import { ConfigError } from '../src/errors.js';
import { LoadBalancer } from '../src/load-balancer.js';
import { addr, echoServer, exchange, refusedPort, scriptedServer } from './helpers/servers.js';

type Raw = Record<string, unknown>;
type T = Parameters<typeof echoServer>[0];

async function start(t: T, listen: string[], extra: Raw = {}) {
  const backends: { name: string; address: string }[] = [];
  // Each says its name, then echoes (and stays open until the client ends).
  for (const name of ['a1', 'b1'])
    backends.push({
      name,
      address: addr(
        await scriptedServer(t, (s) => {
          s.write(name);
          s.pipe(s);
        }),
      ),
    });
  const echo = addr(await echoServer(t));
  const raw = (l: string[], x: Raw): Raw => ({
    log: { level: 'silent' },
    services: {
      web: {
        listen: l,
        backends,
        connect_timeout: '500ms',
        health: { kind: 'none' },
        pool: { min_idle: 0 },
        ...x,
      },
      // An echo service, to hold a session open across a reload.
      echo: { listen: '127.0.0.1:0', backends: [echo], health: { kind: 'none' } },
    },
  });
  const parse = (l: string[], x: Raw) =>
    parseConfig(raw(l, x), { source: '<test>', allowEphemeralListen: true });
  const lb = new LoadBalancer(parse(listen, extra));
  await lb.start();
  t.after(() => lb.close(0));
  return { lb, reload: (l: string[], x: Raw = {}) => lb.reload(parse(l, x)) };
}

/** What `n` clients on `port` reached (each once, sorted). */
async function reached(port: number, n: number): Promise<string[]> {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++)
    seen.add((await exchange(port, '127.0.0.1', '127.0.0.1')).replace(/hi$/, ''));
  return [...seen].sort();
}

function refused(port: number): Promise<boolean> {
  const c = connect({ port, host: '127.0.0.1' });
  return new Promise((resolve) => {
    c.once('connect', () => {
      c.destroy();
      resolve(false);
    });
    c.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

test('listen lists: a service on two ports serves both, routes by the port, and hands both over (listeningServers)', async (t) => {
  const [p1, p2] = [await refusedPort(), await refusedPort()];
  const { lb } = await start(t, [`127.0.0.1:${p1}`, `127.0.0.1:${p2}`], {
    route: [{ port: p2, backends: ['b1'] }],
  });
  assert.deepEqual(await reached(p1, 6), ['a1', 'b1'], 'port 1: no route, every backend');
  assert.deepEqual(await reached(p2, 4), ['b1'], 'port 2: its route');
  const servers = lb.listeningServers();
  assert.ok(servers.has(`127.0.0.1:${p1}`) && servers.has(`127.0.0.1:${p2}`));
});

test('listen lists: a reload adds one address and removes another; the kept one is never rebound, an open session on the removed one carries on', async (t) => {
  const [p1, p2, p3] = [await refusedPort(), await refusedPort(), await refusedPort()];
  const { lb, reload } = await start(t, [`127.0.0.1:${p1}`, `127.0.0.1:${p2}`]);
  const kept = lb.service('web').extraListeners[0];
  // A session open on p2 while p2 leaves the list.
  const open: Socket = connect({ port: p2, host: '127.0.0.1' });
  open.on('error', () => {});
  const [banner] = (await once(open, 'data')) as [Buffer];
  assert.ok(['a1', 'b1'].includes(banner.toString()));
  await reload([`127.0.0.1:${p2}`, `127.0.0.1:${p3}`]);
  // p2 moved from the list's second place to its first: the same listener, not rebound.
  assert.equal(lb.service('web').boundListener, kept);
  assert.ok(await refused(p1), 'the address dropped from the list is closed');
  assert.deepEqual(await reached(p2, 4), ['a1', 'b1']);
  assert.deepEqual(await reached(p3, 4), ['a1', 'b1']);
  await reload([`127.0.0.1:${p3}`]);
  assert.ok(await refused(p2));
  assert.deepEqual(await reached(p3, 2), ['a1', 'b1']);
  assert.equal(open.destroyed, false, 'sessions are never cut by a reload');
  open.write('still here');
  const [echoed] = (await once(open, 'data')) as [Buffer];
  assert.equal(echoed.toString(), 'still here');
  open.destroy();
});

function problems(services: Raw): string[] {
  try {
    parseConfig({ services }, { source: 'c.toml' });
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return [...err.problems];
  }
  assert.fail('expected the config to be refused');
}

test('check: listen list addresses may not overlap, within the list or with another service; passed sockets and sni take one address', () => {
  const be = ['127.0.0.1:9001'];
  assert.deepEqual(
    problems({
      a: { listen: ['127.0.0.1:7001', '0.0.0.0:7001', 'fd:3'], backends: be },
      b: { listen: ['127.0.0.1:7002', '127.0.0.1:7001'], backends: be },
      c: { listen: ['127.0.0.1:7003', '127.0.0.1:7004'], sni: ['*'], backends: be },
    }),
    [
      'c.toml: services.a.listen[1]: 0.0.0.0:7001 overlaps 127.0.0.1:7001, listed before it',
      "c.toml: services.a.listen[2]: a passed socket (fd:3) cannot be one of several listen addresses: give it as the service's only listen",
      'c.toml: services.b.listen[1]: 127.0.0.1:7001 is already the listen address of services.a',
      'c.toml: services.c.listen: a list of listen addresses cannot be combined with sni or [tls] yet: give such a service one address',
    ],
  );
});

/** Three consecutive ports nobody listens on (a range to bind). */
async function freeRange(): Promise<number> {
  for (;;) {
    const first = await refusedPort();
    if (first > 65533) continue;
    if ((await refused(first + 1)) && (await refused(first + 2))) return first;
  }
}

test('listen port ranges: "host:FIRST-LAST" binds each port, a route takes a range of them, check bounds the range', async (t) => {
  const first = await freeRange();
  const range = `127.0.0.1:${first}-${first + 2}`;
  const { lb } = await start(t, [range], {
    route: [{ port: `${first + 1}-${first + 2}`, backends: ['b1'] }],
  });
  assert.deepEqual(await reached(first, 6), ['a1', 'b1'], 'the first port: no route');
  assert.deepEqual(await reached(first + 1, 3), ['b1'], 'the second: the range route');
  assert.deepEqual(await reached(first + 2, 3), ['b1'], 'the third: the range route');
  const servers = lb.listeningServers();
  for (let port = first; port <= first + 2; port++) assert.ok(servers.has(`127.0.0.1:${port}`));

  // A range alone (not in a list) is a list of one range.
  const alone = parseConfig(
    { services: { web: { listen: '127.0.0.1:7000-7003', backends: ['127.0.0.1:1'] } } },
    { source: '<t>' },
  );
  assert.deepEqual(
    [alone.services[0]?.listen, ...(alone.services[0]?.alsoListen ?? [])].map((l) => l?.address),
    ['127.0.0.1:7000', '127.0.0.1:7001', '127.0.0.1:7002', '127.0.0.1:7003'],
  );
  const problems = (listen: unknown, route: Raw[] = []): string => {
    try {
      parseConfig(
        { services: { web: { listen, backends: [{ address: '127.0.0.1:1', name: 'a' }], route } } },
        { source: '<t>' },
      );
      return '';
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      return err.message;
    }
  };
  assert.match(problems('127.0.0.1:7003-7000'), /services\.web\.listen\[0\].*FIRST <= LAST/);
  assert.match(problems('127.0.0.1:1-65535'), /65535 ports .* at most 256 in one range/);
  assert.match(
    problems(['127.0.0.1:7001', '127.0.0.1:7000-7002']),
    /listen\[1\]: 127\.0\.0\.1:7001 overlaps 127\.0\.0\.1:7001, listed before it/,
  );
  assert.match(
    problems('127.0.0.1:7000-7002', [{ port: '7002-7004', backends: ['a'] }]),
    /route\[0\]\.port: 7003 is not a port this service listens on/,
  );
  assert.match(
    problems('127.0.0.1:7000-7002', [{ port: '7002-7000', backends: ['a'] }]),
    /route\[0\]\.port: expected a port 1-65535 or a range/,
  );
});
