import assert from 'node:assert/strict';
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
