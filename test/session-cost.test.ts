// The correctness edges of issue 14's per-session savings: the idle sweep that
// replaced socket.setTimeout, the retry bookkeeping allocated only on a retry,
// and the connect deadline's own timer.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { parseConfig } from '../src/config/schema.js';
import { LoadBalancer } from '../src/load-balancer.js';
import { sweepPeriod } from '../src/proxy/idle-sweep.js';
import { logLines } from './helpers/log-lines.js';
import {
  addr,
  blackhole,
  echoServer,
  ended,
  openClient,
  readAll,
  readBytes,
  refusedPort,
  scriptedServer,
  startLb,
  svc,
  waitFor,
} from './helpers/servers.js';

/** A balancer whose access log lands in `lines`. */
async function loggedLb(
  t: Parameters<typeof startLb>[0],
  raw: Record<string, unknown>,
): Promise<{ lb: LoadBalancer; lines: Record<string, unknown>[] }> {
  const { lines, logger: sinkLogger } = logLines();
  const cfg = parseConfig(
    { ...raw, log: { access: true } },
    { source: '<test>', allowEphemeralListen: true },
  );
  const lb = new LoadBalancer(cfg, { logger: sinkLogger });
  await lb.start();
  t.after(() => lb.close(0));
  return { lb, lines };
}

const access = (lines: Record<string, unknown>[]) => lines.filter((l) => l.log === 'access');

test('idle sweep: period is an eighth of the deadline, 25 ms to 1 s', () => {
  assert.equal(sweepPeriod(200), 25);
  assert.equal(sweepPeriod(100), 25);
  assert.equal(sweepPeriod(4000), 500);
  assert.equal(sweepPeriod(600_000), 1000);
});

/** Writes a byte every `everyMs` on `sock` until `stop` resolves. */
function trickle(sock: Socket, everyMs: number): () => void {
  const timer = setInterval(() => {
    if (!sock.destroyed) sock.write('.');
  }, everyMs);
  return () => clearInterval(timer);
}

test('idle sweep: bytes only client → backend keep the session open past idle_timeout, then silence ends it', async (t) => {
  let backendSock: Socket | undefined;
  let received = 0;
  const be = await scriptedServer(t, (s) => {
    backendSock = s;
    s.on('data', (d) => {
      received += d.length;
    });
  });
  const lb = await startLb(t, svc([addr(be)], { idle_timeout: '300ms' }));
  const c = await openClient(lb.address('web').port);
  c.resume();
  const stop = trickle(c, 50);
  // 900 ms of one-way traffic: three deadlines, and the session lives.
  await waitFor(() => received >= 15, 5000, 'client bytes at the backend');
  assert.equal(lb.service('web').activeSessions, 1, 'one-way traffic is activity');
  stop();
  const quietAt = Date.now();
  await Promise.all([ended(c), once(backendSock as Socket, 'end')]);
  assert.ok(Date.now() - quietAt >= 250, 'not before the deadline');
});

test('idle sweep: bytes only backend → client keep the session open past idle_timeout', async (t) => {
  let stop = (): void => {};
  const be = await scriptedServer(t, (s) => {
    s.resume();
    stop = trickle(s, 50);
  });
  const { lb, lines } = await loggedLb(t, svc([addr(be)], { idle_timeout: '300ms' }));
  const c = await openClient(lb.address('web').port);
  let got = 0;
  c.on('data', (d: Buffer) => {
    got += d.length;
  });
  c.write('x');
  await waitFor(() => got >= 15, 5000, 'backend bytes at the client');
  assert.equal(lb.service('web').activeSessions, 1, 'the other direction is activity too');
  stop();
  await ended(c);
  await waitFor(() => access(lines).length === 1, 3000, 'access line');
  assert.equal(access(lines)[0]?.cause, 'idle-timeout');
});

test('idle sweep: a reload that shortens idle_timeout applies to open sessions', async (t) => {
  const be = await echoServer(t);
  const raw = svc([addr(be)], { idle_timeout: '1h' });
  const lb = await startLb(t, raw);
  const c = await openClient(lb.address('web').port);
  c.write('x');
  c.resume();
  await waitFor(() => lb.service('web').activeSessions === 1, 3000, 'session');
  const next = svc([addr(be)], { idle_timeout: '200ms' });
  await lb.reload(parseConfig(next, { source: '<test>', allowEphemeralListen: true }));
  await ended(c);
  await waitFor(() => lb.service('web').activeSessions === 0, 3000, 'session to end');
});

test('idle sweep: idle_timeout = 0 never ends a quiet session', async (t) => {
  const be = await echoServer(t);
  const lb = await startLb(t, svc([addr(be)], { idle_timeout: 0 }));
  const c = await openClient(lb.address('web').port);
  c.write('x');
  assert.equal((await readBytes(c, 1)).toString(), 'x');
  // Long enough for a sweep at the shortest period (25 ms) to have run many times.
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(lb.service('web').activeSessions, 1);
  c.end('y');
  assert.equal((await readAll(c)).toString(), 'y');
});

test('retry bookkeeping: a retried dial logs each failure and its retries, and never retries a tried backend while another is untried', async (t) => {
  const dead1 = await refusedPort();
  const dead2 = await refusedPort();
  const live = await echoServer(t);
  const { lb, lines } = await loggedLb(
    t,
    svc([addr(dead1), addr(dead2), addr(live)], { max_retries: 2, balance: 'round-robin' }),
  );
  const port = lb.address('web').port;
  for (let i = 0; i < 6; i++) {
    const c = await openClient(port);
    c.end(`m${i}`);
    assert.equal((await readAll(c)).toString(), `m${i}`);
    c.destroy();
  }
  await waitFor(() => access(lines).length === 6, 3000, 'access lines');
  let retried = 0;
  for (const l of access(lines)) {
    assert.equal(l.backend, addr(live));
    const fails = (l.dialFailures ?? []) as { backend: string; cause: string }[];
    assert.equal(l.retries, fails.length, 'one retry per failed dial');
    assert.equal(new Set(fails.map((f) => f.backend)).size, fails.length, 'no backend twice');
    for (const f of fails) assert.equal(f.cause, 'ECONNREFUSED');
    if (fails.length > 0) retried++;
  }
  assert.ok(retried > 0, 'some sessions met a dead backend first');
  // A session that never retried carries no failure list.
  const clean = access(lines).find((l) => l.retries === 0);
  if (clean) assert.equal(clean.dialFailures, undefined);
});

test('connect deadline: a dial its caller abandoned is not failed later by its timer', async (t) => {
  const hole = await blackhole(t);
  const lb = await startLb(t, svc([addr(hole)], { connect_timeout: '200ms', max_retries: 0 }));
  const web = lb.service('web');
  const ac = new AbortController();
  const dial = lb.connect('web', { signal: ac.signal });
  // The connect is in flight to a backend that never answers; the caller gives up.
  await waitFor(() => web.backends.all[0]?.active === 1, 1000, 'the dial in flight');
  ac.abort();
  await assert.rejects(dial);
  // Past the deadline: the cancelled connect's timer must not report a failure.
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(
    web.backends.all[0]?.consecutiveFailures,
    0,
    'no failure counted against the backend',
  );
  assert.equal(web.backends.all[0]?.state, 'up');
});

test('FIN passed on by close(): a backend that half-closed first still gets every byte the client sends after it', async (t) => {
  let got = 0;
  let eof = false;
  const be = await scriptedServer(t, (s) => {
    // allowHalfOpen backend: says goodbye at once, then keeps reading, slowly, so the
    // balancer's writes to it are still pending when the client's FIN arrives.
    s.end('bye');
    s.on('data', (d: Buffer) => {
      got += d.length;
    });
    s.pause();
    const slow = setInterval(() => {
      s.resume();
      setImmediate(() => s.pause());
    }, 2);
    s.on('end', () => {
      eof = true;
      clearInterval(slow);
    });
    s.on('close', () => clearInterval(slow));
  });
  const lb = await startLb(t, svc([addr(be)]));
  const c = await openClient(lb.address('web').port);
  assert.equal((await readAll(c)).toString(), 'bye');
  // 8 MiB after the backend's FIN, and the client's own FIN right behind it.
  const total = 8 * 2 ** 20;
  c.end(Buffer.alloc(total, 7));
  await waitFor(() => eof, 20_000, 'backend EOF');
  assert.equal(got, total);
});

test('lazy client address: the access log names the client even when it is gone before the session ends', async (t) => {
  const be = await echoServer(t);
  const { lb, lines } = await loggedLb(t, svc([addr(be)]));
  const c = await openClient(lb.address('web').port);
  c.write('x');
  assert.equal((await readBytes(c, 1)).toString(), 'x');
  c.resetAndDestroy();
  await waitFor(() => access(lines).length === 1, 3000, 'access line');
  assert.match(String(access(lines)[0]?.client), /^127\.0\.0\.1:\d+$/);
});
