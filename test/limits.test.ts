import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import type { LbError } from '../src/errors.js';
import {
  addr,
  type echoServer,
  openClient,
  readAll,
  readBytes,
  scriptedServer,
  startLb,
  svc,
  waitFor,
} from './helpers/servers.js';

/** A backend that echoes and counts the sessions open on it. */
async function countingEcho(t: Parameters<typeof echoServer>[0]) {
  const open = new Set<Socket>();
  const port = await scriptedServer(t, (s) => {
    open.add(s);
    s.on('close', () => open.delete(s));
    s.pipe(s);
  });
  return { port, open };
}

async function echoOnce(port: number, msg: string): Promise<Socket> {
  const c = await openClient(port);
  c.write(msg);
  assert.equal((await readBytes(c, msg.length)).toString(), msg);
  return c;
}

test('backend max_connections: a capped backend takes no more; the other takes the rest', async (t) => {
  const a = await countingEcho(t);
  const b = await countingEcho(t);
  const lb = await startLb(t, svc([{ address: addr(a.port), max_connections: 1 }, addr(b.port)]));
  const port = lb.address('web').port;
  const clients = [];
  for (let i = 0; i < 5; i++) clients.push(await echoOnce(port, `m${i}`));
  assert.equal(a.open.size, 1);
  assert.equal(b.open.size, 4);
  for (const c of clients) c.destroy();
});

test('queue: with every backend at its cap, clients wait in order; the bound and the timeout refuse the rest', async (t) => {
  const a = await countingEcho(t);
  const lb = await startLb(
    t,
    svc([{ address: addr(a.port), max_connections: 2 }], {
      queue_size: 2,
      queue_timeout: '1500ms',
    }),
  );
  const port = lb.address('web').port;
  const s = lb.service('web');
  const holders = [await echoOnce(port, 'h1'), await echoOnce(port, 'h2')];
  // Two wait; their bytes are not read until they get a slot.
  const w1 = await openClient(port);
  w1.write('first');
  await waitFor(() => s.counters.queued === 1, 2000, 'w1 queued');
  const w2 = await openClient(port);
  w2.write('second');
  await waitFor(() => s.counters.queued === 2, 2000, 'w2 queued');
  // The queue is full: the next is refused at once.
  const over = await openClient(port);
  over.resume();
  await once(over, 'end');
  assert.equal(s.counters.refusedQueueFull, 1);

  const order: string[] = [];
  const r1 = readBytes(w1, 5).then((d) => order.push(d.toString()));
  const r2 = readBytes(w2, 6).then((d) => order.push(d.toString()));
  (holders[0] as Socket).destroy();
  await r1;
  assert.deepEqual(order, ['first'], 'the first in line gets the first free slot');
  (holders[1] as Socket).destroy();
  await r2;
  assert.deepEqual(order, ['first', 'second']);
  assert.equal(a.open.size, 2);

  // Both slots taken again: a new client waits, then times out.
  const late = await openClient(port);
  late.resume();
  const start = Date.now();
  await once(late, 'end');
  assert.ok(Date.now() - start >= 1300, 'refused at queue_timeout, not before');
  assert.equal(s.counters.refusedQueueTimeout, 1);
  for (const c of [w1, w2, over, late]) c.destroy();
});

test('least-connections: long sessions pile up on no backend (round-robin piles them up)', async (t) => {
  async function run(balance: string): Promise<number[]> {
    const backends = [await countingEcho(t), await countingEcho(t), await countingEcho(t)];
    const lb = await startLb(
      t,
      svc(
        backends.map((b) => addr(b.port)),
        { balance },
      ),
    );
    const port = lb.address('web').port;
    const long: Socket[] = [];
    // Every third session stays open; the others are short. Round-robin puts every long one on the
    // same backend; least-connections sees the open ones and spreads them.
    for (let i = 0; i < 30; i++) {
      const c = await echoOnce(port, 'x');
      if (i % 3 === 0) long.push(c);
      else {
        c.end();
        await readAll(c);
        c.destroy();
        await waitFor(
          () => lb.service('web').activeSessions === long.length,
          2000,
          'short session to end',
        );
      }
    }
    const perBackend = backends.map((b) => b.open.size);
    for (const c of long) c.destroy();
    return perBackend;
  }
  const lc = await run('least-connections');
  assert.ok(
    Math.max(...lc) - Math.min(...lc) <= 1,
    `least-connections: long sessions per backend ${lc}`,
  );
  const rr = await run('round-robin');
  assert.equal(Math.max(...rr), 10, `round-robin piles them: ${rr}`);
});

test('drain through the API: no new sessions go to it, its open sessions finish; enable brings it back', async (t) => {
  const a = await countingEcho(t);
  const b = await countingEcho(t);
  const lb = await startLb(t, svc([addr(a.port), addr(b.port)]));
  const port = lb.address('web').port;
  const onA = await echoOnce(port, 'first');
  assert.equal(a.open.size, 1);
  const drained = lb.drainBackend('web', addr(a.port));
  assert.equal(drained.state, 'draining');
  const more = [];
  for (let i = 0; i < 4; i++) more.push(await echoOnce(port, `n${i}`));
  assert.equal(a.open.size, 1, 'no new session on the draining backend');
  assert.equal(b.open.size, 4);
  onA.write('still here');
  assert.equal((await readBytes(onA, 10)).toString(), 'still here', 'its open session carries on');
  lb.enableBackend('web', addr(a.port));
  const back = [await echoOnce(port, 'x'), await echoOnce(port, 'y')];
  assert.ok(a.open.size >= 2);
  for (const c of [onA, ...more, ...back]) c.destroy();
});

test('setWeight through the API changes the share at once', async (t) => {
  const a = await countingEcho(t);
  const b = await countingEcho(t);
  const lb = await startLb(t, svc([addr(a.port), addr(b.port)]));
  lb.setWeight('web', addr(a.port), 3);
  const port = lb.address('web').port;
  const cs = [];
  for (let i = 0; i < 8; i++) cs.push(await echoOnce(port, 'w'));
  assert.deepEqual([a.open.size, b.open.size], [6, 2]);
  for (const c of cs) c.destroy();
  assert.throws(() => lb.setWeight('web', addr(a.port), -1), { code: 'LB_ERR_INVALID_ARGUMENT' });
  assert.throws(() => lb.setWeight('web', '127.0.0.1:1', 2), { code: 'LB_ERR_UNKNOWN_BACKEND' });
  assert.throws(() => lb.drainBackend('nope', addr(a.port)), { code: 'LB_ERR_UNKNOWN_SERVICE' });
});

test('addBackend checks its settings as the config file does, and adds nothing on a bad one', async (t) => {
  const a = await countingEcho(t);
  const lb = await startLb(t, svc([addr(a.port)]));
  const cases: [Parameters<typeof lb.addBackend>[2], string][] = [
    [{ maxRate: -1 }, 'max_rate'],
    [{ maxConnections: 1.5 }, 'max_connections'],
    [{ slowStart: -5 }, 'slow_start'],
    [{ weight: -1 }, 'weight'],
  ];
  for (const [opts, field] of cases) {
    assert.throws(
      () => lb.addBackend('web', '127.0.0.1:1', opts),
      (err: LbError) => err.code === 'LB_ERR_INVALID_ARGUMENT' && err.message.includes(field),
      field,
    );
  }
  assert.throws(() => lb.addBackend('web', '127.0.0.1', {}), { code: 'LB_ERR_INVALID_ARGUMENT' });
  assert.equal(lb.service('web').backends.all.length, 1, 'nothing was half-added');
  lb.addBackend('web', '127.0.0.1:1', { maxRate: 5, slowStart: 100 });
  assert.equal(lb.service('web').backends.all.length, 2);
});
