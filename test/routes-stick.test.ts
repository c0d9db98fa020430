import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../src/config/schema.js';
import { LoadBalancer } from '../src/load-balancer.js';
import { addr, bannerServer, exchange } from './helpers/servers.js';

type Raw = Record<string, unknown>;
type T = Parameters<typeof bannerServer>[0];
type Named = { name: string; address: string };

/** Routes by source under a stick table on the source address: each client stays on one backend of its route's group. */
async function start(t: T) {
  const all: Named[] = [];
  for (const name of ['a1', 'a2', 'a3', 'b1', 'b2'])
    all.push({ name, address: addr(await bannerServer(t, name)) });
  const config = (backends: string[], route: Raw[]): Raw => ({
    log: { level: 'silent' },
    services: {
      web: {
        listen: '127.0.0.1:0',
        balance: 'round-robin',
        backends: all.filter((b) => backends.includes(b.name)),
        connect_timeout: '500ms',
        health: { kind: 'none' },
        pool: { min_idle: 0 },
        stick: { on: 'source' },
        route,
      },
    },
  });
  const parse = (backends: string[], route: Raw[]) =>
    parseConfig(config(backends, route), { source: '<test>', allowEphemeralListen: true });
  const lb = new LoadBalancer(parse(['a1', 'a2', 'b1', 'b2'], BY_SOURCE), {});
  await lb.start();
  t.after(() => lb.close(0));
  return {
    lb,
    port: lb.address('web').port,
    reload: (backends: string[], route: Raw[]) => lb.reload(parse(backends, route)),
  };
}

const BY_SOURCE: Raw[] = [
  { name: 'two', source: ['127.0.0.2/32'], backends: ['b1', 'b2'] },
  { name: 'loopback', source: ['127.0.0.0/8'], backends: ['a1', 'a2'] },
];

/** The backends `n` clients from `from` reached (sorted, each once). */
async function reached(port: number, from: string, n: number): Promise<string[]> {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) seen.add(await exchange(port, '127.0.0.1', from));
  return [...seen].sort();
}

/** The one backend all `n` clients from `from` reached; fails if they were spread. */
async function stuck(port: number, from: string, n = 5): Promise<string> {
  const seen = await reached(port, from, n);
  assert.equal(seen.length, 1, `clients from ${from} reached ${seen.join(', ')}`);
  return seen[0] as string;
}

test('routes with [stick]: each client stays on one backend of its route’s group; a backend added to a group moves nobody', async (t) => {
  const { port, reload } = await start(t);
  const one = await stuck(port, '127.0.0.1');
  const two = await stuck(port, '127.0.0.2');
  assert.ok(['a1', 'a2'].includes(one), one);
  assert.ok(['b1', 'b2'].includes(two), two);
  // a3 joins group "loopback": round-robin would now spread, the stick table keeps both clients.
  await reload(
    ['a1', 'a2', 'a3', 'b1', 'b2'],
    [
      BY_SOURCE[0] as Raw,
      { name: 'loopback', source: ['127.0.0.0/8'], backends: ['a1', 'a2', 'a3'] },
    ],
  );
  assert.equal(await stuck(port, '127.0.0.1'), one);
  assert.equal(await stuck(port, '127.0.0.2'), two);
});

test('routes with [stick]: a reload that moves a client’s route to another group moves its entry into that group, never outside it', async (t) => {
  const { lb, port, reload } = await start(t);
  const one = await stuck(port, '127.0.0.1');
  const two = await stuck(port, '127.0.0.2');
  // The groups swap: each remembered backend now lies outside its client's group.
  await reload(
    ['a1', 'a2', 'b1', 'b2'],
    [
      { name: 'two', source: ['127.0.0.2/32'], backends: ['a1', 'a2'] },
      { name: 'loopback', source: ['127.0.0.0/8'], backends: ['b1', 'b2'] },
    ],
  );
  const oneNow = await stuck(port, '127.0.0.1');
  const twoNow = await stuck(port, '127.0.0.2');
  assert.ok(['b1', 'b2'].includes(oneNow), `127.0.0.1 was on ${one}, now on ${oneNow}`);
  assert.ok(['a1', 'a2'].includes(twoNow), `127.0.0.2 was on ${two}, now on ${twoNow}`);
  const st = lb.service('web').sticky;
  assert.ok(st, 'the service keeps its stick table behind routes');
  assert.equal(st.table.counters.moves, 2);
});

test('check: routes and [stick] together are accepted', () => {
  const cfg = parseConfig(
    {
      services: {
        web: {
          listen: '127.0.0.1:9',
          backends: [{ address: '127.0.0.1:1', name: 'x' }],
          stick: { on: 'source' },
          route: [{ source: ['10.0.0.0/8'], backends: ['x'] }],
        },
      },
    },
    { source: '<test>' },
  );
  assert.equal(cfg.services[0]?.routes.length, 1);
  assert.ok(cfg.services[0]?.stick);
});
