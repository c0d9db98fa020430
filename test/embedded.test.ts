import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { main } from '../examples/embedded.js';
import { parseConfig } from '../src/config/schema.js';
import { LoadBalancer } from '../src/load-balancer.js';
import {
  addr,
  httpServer,
  readBytes,
  refusedPort,
  scriptedServer,
  startLb,
  svc,
  waitFor,
} from './helpers/servers.js';

test('embedded: the README example runs: addBackend x3, connect, HTTP request, health check, cleanup', async (t) => {
  const ports = [await httpServer(t, 'a'), await httpServer(t, 'b'), await httpServer(t, 'c')];
  const answers = await main(ports);
  assert.equal(answers.length, 4);
  assert.deepEqual([...new Set(answers)].sort(), ['a', 'b', 'c']);
});

test('embedded: connect() takes a warm socket, keeps early bytes first, retries past a dead backend, counts', async (t) => {
  // A server-first backend that keeps the connection open (a FIN would rightly evict it from the pool).
  const banner = await scriptedServer(t, (sock) => {
    sock.write('HELLO\r\n');
    sock.resume();
  });
  const dead = await refusedPort();
  const lb = await startLb(
    t,
    svc([addr(dead), addr(banner)], { pool: { min_idle: 1, max_idle: 1 } }),
  );
  const s = lb.service('web');
  await waitFor(() => s.pool.idleFor(s.backends.get(addr(banner)) as never) === 1, 3000, 'pool');
  // Round-robin tries the dead backend first for one of these; the caller never sees it.
  for (let i = 0; i < 2; i++) {
    const sock = await lb.connect('web');
    assert.equal((await readBytes(sock, 7)).toString(), 'HELLO\r\n');
    sock.destroy();
  }
  assert.ok(s.pool.counters.hits >= 1);
  assert.equal(s.counters.embedded, 2);
  assert.equal(s.backends.get(addr(banner))?.sessionsTotal, 2);
});

test('embedded: errors carry LB_ERR_* codes (all dials fail, unknown service, aborted)', async (t) => {
  const dead = await refusedPort();
  const lb = await startLb(t, svc([addr(dead)], { max_retries: 1 }));
  await assert.rejects(lb.connect('web'), { code: 'LB_ERR_DIAL' });
  assert.throws(() => lb.connect('nope'), { code: 'LB_ERR_UNKNOWN_SERVICE' });
  const idle = new LoadBalancer(
    parseConfig(
      { services: { x: { listen: '127.0.0.1:0', backends: [addr(dead)], retry_delay: '5s' } } },
      { allowEphemeralListen: true },
    ),
  );
  const ctl = new AbortController();
  const p = idle.connect('x', { signal: ctl.signal });
  setTimeout(() => ctl.abort(), 50);
  await assert.rejects(p, { code: 'LB_ERR_ABORTED' });
  await idle.close(0);
});

test('embedded: on an ip-hash service, connect({ key }) is hashed like a client address', async (t) => {
  const ports = [await httpServer(t, 'a'), await httpServer(t, 'b'), await httpServer(t, 'c')];
  const lb = await startLb(t, svc(ports.map(addr), { balance: 'ip-hash' }));
  const landed = async (key: string): Promise<number> => {
    const sock = await lb.connect('web', { key });
    const port = sock.remotePort as number;
    sock.destroy();
    return port;
  };
  const seen = new Set<number>();
  for (let i = 0; i < 24; i++) seen.add(await landed(`tenant-${i}`));
  assert.equal(seen.size, 3, 'different keys spread over the backends');
  const first = await landed('tenant-7');
  for (let i = 0; i < 5; i++) assert.equal(await landed('tenant-7'), first, 'one key, one backend');
});

test('embedded: a signal shared by many connect() calls keeps no listener once each settles', async (t) => {
  const a = await httpServer(t, 'a');
  const dead = await refusedPort();
  const lb = await startLb(t, svc([addr(a)]));
  const ctl = new AbortController();
  const warnings: Error[] = [];
  const onWarning = (w: Error): void => {
    warnings.push(w);
  };
  process.on('warning', onWarning);
  t.after(() => process.off('warning', onWarning));
  for (let i = 0; i < 40; i++) (await lb.connect('web', { signal: ctl.signal })).destroy();
  const failing = await startLb(t, svc([addr(dead)], { max_retries: 0 }));
  for (let i = 0; i < 20; i++)
    await assert.rejects(failing.connect('web', { signal: ctl.signal }), { code: 'LB_ERR_DIAL' });
  assert.equal(EventEmitter.getEventListeners(ctl.signal, 'abort').length, 0);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(
    warnings.filter((w) => w.name === 'MaxListenersExceededWarning'),
    [],
  );
});
