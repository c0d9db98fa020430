// Issue 28 item 3: client_timeout, server_timeout and tunnel_timeout, enforced by the
// service's idle sweep, with real sockets that go silent on one side, the other, or both.
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { type TestContext, test } from 'node:test';
import { parseConfig } from '../src/config/schema.js';
import { LoadBalancer } from '../src/load-balancer.js';
import { logLines } from './helpers/log-lines.js';
import { addr, ended, openClient, scriptedServer, svc, waitFor } from './helpers/servers.js';

async function loggedLb(
  t: TestContext,
  raw: Record<string, unknown>,
): Promise<{ lb: LoadBalancer; access: () => Record<string, unknown>[] }> {
  const { logger, access } = logLines();
  const cfg = parseConfig(
    { ...raw, log: { access: true } },
    { source: '<test>', allowEphemeralListen: true },
  );
  const lb = new LoadBalancer(cfg, { logger });
  await lb.start();
  t.after(() => lb.close(0));
  return { lb, access };
}

/** Writes a byte every `everyMs` on `sock` until the returned stop is called. */
function trickle(sock: Socket, everyMs: number): () => void {
  const timer = setInterval(() => {
    if (!sock.destroyed && !sock.writableEnded) sock.write('.');
  }, everyMs);
  return () => clearInterval(timer);
}

/** Resolves with the access line's cause once the one session has ended. */
async function causeOf(access: () => Record<string, unknown>[]): Promise<unknown> {
  await waitFor(() => access().length === 1, 5000, 'the access line');
  return access()[0]?.cause;
}

test('client_timeout: a client that stops sending is cut while the backend keeps talking', async (t) => {
  const stops: (() => void)[] = [];
  t.after(() => {
    for (const s of stops) s();
  });
  const be = await scriptedServer(t, (s) => {
    s.resume();
    stops.push(trickle(s, 40));
  });
  const { lb, access } = await loggedLb(t, svc([addr(be)], { client_timeout: '300ms' }));
  const c = await openClient(lb.address('web').port);
  let got = 0;
  c.on('data', (d: Buffer) => {
    got += d.length;
  });
  c.write('x');
  const silentAt = Date.now();
  await ended(c);
  const after = Date.now() - silentAt;
  assert.ok(after >= 250, `not before the deadline (${after} ms)`);
  assert.ok(got >= 3, 'the backend was talking all along');
  assert.equal(await causeOf(access), 'client-timeout');
  assert.equal(lb.service('web').counters.endedClientTimeout, 1);
  assert.equal(lb.service('web').counters.endedIdleTimeout, 0);
});

test('server_timeout: a backend that goes silent is cut while the client keeps sending', async (t) => {
  let received = 0;
  const be = await scriptedServer(t, (s) => {
    s.on('data', (d: Buffer) => {
      received += d.length;
    });
  });
  const { lb, access } = await loggedLb(t, svc([addr(be)], { server_timeout: '300ms' }));
  const c = await openClient(lb.address('web').port);
  c.resume();
  const stop = trickle(c, 40);
  t.after(stop);
  const start = Date.now();
  await ended(c);
  stop();
  assert.ok(Date.now() - start >= 250, 'not before the deadline');
  assert.ok(received >= 3, 'the client was sending all along');
  assert.equal(await causeOf(access), 'server-timeout');
  assert.equal(lb.service('web').counters.endedServerTimeout, 1);
});

test('tunnel_timeout: once both have spoken it replaces client_timeout; both silent ends the tunnel', async (t) => {
  let backend: Socket | undefined;
  const be = await scriptedServer(t, (s) => {
    backend = s;
    s.resume();
  });
  const { lb, access } = await loggedLb(
    t,
    svc([addr(be)], { client_timeout: '150ms', tunnel_timeout: '400ms' }),
  );
  const c = await openClient(lb.address('web').port);
  let got = 0;
  c.on('data', (d: Buffer) => {
    got += d.length;
  });
  c.write('x');
  await waitFor(() => backend !== undefined, 3000, 'backend accept');
  // The backend speaks: a tunnel. Then it trickles for 600 ms while the client stays silent,
  // four client_timeouts long: tunnel_timeout governs now, and one side talking is not silence.
  const stop = trickle(backend as Socket, 40);
  t.after(stop);
  await waitFor(() => got >= 12, 5000, 'backend bytes at the client');
  assert.equal(lb.service('web').activeSessions, 1, 'client_timeout no longer applies');
  stop();
  const quietAt = Date.now();
  await ended(c);
  assert.ok(Date.now() - quietAt >= 350, 'not before tunnel_timeout');
  assert.equal(await causeOf(access), 'tunnel-timeout');
  assert.equal(lb.service('web').counters.endedTunnelTimeout, 1);
});

test('tunnel_timeout: before the backend has spoken, client_timeout still applies', async (t) => {
  const be = await scriptedServer(t, (s) => s.resume());
  const { lb, access } = await loggedLb(
    t,
    svc([addr(be)], { client_timeout: '200ms', tunnel_timeout: '1h' }),
  );
  const c = await openClient(lb.address('web').port);
  c.resume();
  c.write('x');
  await ended(c);
  assert.equal(await causeOf(access), 'client-timeout');
  assert.equal(lb.service('web').counters.endedClientTimeout, 1);
});

test('client_timeout: a client that half-closed is done, not silent; the reply streams on', async (t) => {
  const stops: (() => void)[] = [];
  t.after(() => {
    for (const s of stops) s();
  });
  let sent = 0;
  const be = await scriptedServer(t, (s) => {
    s.resume();
    s.once('end', () => {
      // The request is complete: a slow reply, 700 ms of it, then the backend's FIN.
      const stop = trickle(s, 40);
      stops.push(stop);
      s.on('drain', () => {});
      const timer = setTimeout(() => {
        stop();
        sent = s.bytesWritten;
        s.end();
      }, 700);
      stops.push(() => clearTimeout(timer));
    });
  });
  const { lb, access } = await loggedLb(t, svc([addr(be)], { client_timeout: '200ms' }));
  const c = await openClient(lb.address('web').port);
  let got = 0;
  c.on('data', (d: Buffer) => {
    got += d.length;
  });
  c.end('request');
  await ended(c);
  assert.notEqual(await causeOf(access), 'client-timeout');
  assert.ok(sent > 0 && got === sent, `the whole reply arrived (${got} of ${sent})`);
  assert.equal(lb.service('web').counters.endedClientTimeout, 0);
});

test('server_timeout: a backend silent after the client half-closed ends with server-timeout', async (t) => {
  const be = await scriptedServer(t, (s) => s.resume());
  const { lb, access } = await loggedLb(t, svc([addr(be)], { server_timeout: '200ms' }));
  const c = await openClient(lb.address('web').port);
  c.resume();
  c.end('request');
  await ended(c);
  assert.equal(await causeOf(access), 'server-timeout', 'the timeout, not the FIN, names the end');
});

test('side timeouts: bad values are config errors naming the key', () => {
  const bad = (extra: Record<string, unknown>): string => {
    try {
      parseConfig(svc(['127.0.0.1:1'], extra), { source: 'c.toml', allowEphemeralListen: true });
    } catch (err) {
      return (err as Error).message;
    }
    return '';
  };
  assert.match(
    bad({ client_timeout: '-1s' }),
    /services\.web\.client_timeout: must not be negative/,
  );
  assert.match(
    bad({ server_timeout: 'soon' }),
    /services\.web\.server_timeout: expected a duration/,
  );
  assert.match(bad({ tunnel_timeout: -5 }), /services\.web\.tunnel_timeout: must not be negative/);
  assert.equal(bad({ client_timeout: 0, server_timeout: '1s', tunnel_timeout: '1h' }), '');
});
