import assert from 'node:assert/strict';
import { lookup } from 'node:dns/promises';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Server } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { createServer as createTlsServer, connect as tlsConnect } from 'node:tls';
import { servicesView } from '../src/admin/views.js';
import { parseConfig } from '../src/config/schema.js';
import { LoadBalancer } from '../src/load-balancer.js';
import { startAdmin } from './helpers/admin.js';
import { addresses, discovering } from './helpers/discovery.js';
import { captureHello } from './helpers/hello.js';
import { makeIssuer } from './helpers/issuer.js';
import { logLines } from './helpers/log-lines.js';
import { makePki } from './helpers/pki.js';
import { addr, echoServer, refusedPort, startLb, svc, waitFor } from './helpers/servers.js';

/** Issue 24 ("Hardening II"), items 4 to 7: each test failed before its fix. */

type Raw = Record<string, unknown>;

async function terminating(t: TestContext, extra: Raw = {}, access = false) {
  const pki = makeIssuer(t);
  const a = pki.server(['a.test']);
  const backend = await echoServer(t);
  const log = logLines();
  const raw = svc([addr(backend)], { tls: { cert: a.cert, key: a.key }, ...extra });
  const lb = new LoadBalancer(
    parseConfig({ ...raw, log: { level: 'silent', access } }, { allowEphemeralListen: true }),
    { logger: log.logger },
  );
  await lb.start();
  t.after(() => lb.close(0));
  return { lb, log, pki, port: lb.address('web').port };
}

/** A raw client that sends a real ClientHello, then half-closes (FIN); resolves when the balancer closes it. */
async function helloThenFin(port: number, hello: Buffer): Promise<number> {
  const c = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  c.on('error', () => {});
  c.on('data', () => {});
  await once(c, 'connect');
  const at = Date.now();
  c.end(hello);
  await once(c, 'close');
  return Date.now() - at;
}

/** A TLS client that resets its connection as soon as its handshake is done. */
async function resetAfterSecureConnect(port: number, ca: Buffer): Promise<void> {
  const raw = connect({ port, host: '127.0.0.1' });
  raw.on('error', () => {});
  const c = tlsConnect({ socket: raw, servername: 'a.test', ca });
  c.on('error', () => {});
  await once(c, 'secureConnect');
  raw.resetAndDestroy();
  await once(raw, 'close');
}

test('item 4: a client that half-closes mid-handshake is ended at once, not held for hello_timeout', async (t) => {
  const { lb, port } = await terminating(t, { hello_timeout: '20s' });
  const hello = await captureHello({ servername: 'a.test' });
  const ms = await helloThenFin(port, hello);
  assert.ok(ms < 2000, `held ${ms} ms after its FIN`);
  await waitFor(() => lb.service('web').activeSessions === 0, 2000, 'no client left');
});

test('item 4: on an SNI-routed terminating service too, a FIN with the hello (read by the front first) ends the client at once', async (t) => {
  const { lb, port } = await terminating(t, { hello_timeout: '20s', sni: ['a.test'] });
  const hello = await captureHello({ servername: 'a.test' });
  const ms = await helloThenFin(port, hello);
  assert.ok(ms < 2000, `held ${ms} ms after its FIN`);
  await waitFor(() => lb.service('web').activeSessions === 0, 2000, 'no client left');
});

test('item 4: 300 aborted handshakes (FIN mid-handshake, reset after secureConnect) from one address draw no per-source refusal', async (t) => {
  const { lb, port, pki } = await terminating(t, {
    hello_timeout: '20s',
    max_connections_per_source: 4,
  });
  const hello = await captureHello({ servername: 'a.test' });
  const ca = pki.ca;
  const s = lb.service('web');
  for (let i = 0; i < 150; i++) {
    await helloThenFin(port, hello);
    await resetAfterSecureConnect(port, ca);
    // Each lease comes back within moments: never 4 held by clients already gone.
    await waitFor(() => s.activeSessions <= 2, 2000, `aborted handshake ${i} to be let go`);
  }
  assert.equal(s.counters.refusedSourceConnections, 0);
  // And a real client is served.
  const c = tlsConnect({ port, host: '127.0.0.1', servername: 'a.test', ca });
  c.on('error', () => {});
  await once(c, 'secureConnect');
  c.write('still here');
  const [d] = (await once(c, 'data')) as [Buffer];
  assert.equal(d.toString(), 'still here');
  c.destroy();
});

test('item 5: the access log carries the SNI name a terminated client sent', async (t) => {
  const { port, log, pki } = await terminating(t, {}, true);
  const c = tlsConnect({
    port,
    host: '127.0.0.1',
    servername: 'A.Test',
    ca: pki.ca,
  });
  c.on('error', () => {});
  await once(c, 'secureConnect');
  c.write('x');
  await once(c, 'data');
  c.end();
  await waitFor(() => log.access().length === 1, 3000, 'the access line');
  const line = log.access()[0] as Raw;
  assert.equal(line.sni, 'a.test');
  assert.equal(line.tls, true);
});

test("item 6: a backend's reason follows the latest failing check (ECONNREFUSED, then a TLS verification failure)", async (t) => {
  const pki = makePki(t);
  const port = await refusedPort();
  const lb = await startLb(
    t,
    svc([addr(port)], {
      backend_tls: { ca: pki.ca.certFile, servername: 'backend.test' },
      health: { kind: 'tcp', interval: '1h', fall: 1, rise: 1 },
    }),
  );
  const s = lb.service('web');
  const reason = () => servicesView(lb).services[0]?.backends[0]?.reason;
  await s.probeNow();
  assert.equal(reason(), 'probe: ECONNREFUSED');
  // Now something answers there, with a certificate nobody here trusts.
  const rogue: Server = createTlsServer({ key: pki.rogue.key, cert: pki.rogue.cert }, (c) =>
    c.destroy(),
  );
  rogue.on('tlsClientError', () => {});
  rogue.listen(port, '127.0.0.1');
  await once(rogue, 'listening');
  t.after(() => rogue.close());
  await s.probeNow();
  const b = s.backends.all[0];
  assert.equal(b?.lastCheck?.detail, 'tls: unable to verify the first certificate');
  assert.equal(reason(), 'probe: tls: unable to verify the first certificate');
  assert.equal(b?.healthy, false);
});

test('item 7: one endpoint, one backend: the API refuses [::ffff:127.0.0.1]:PORT and LOCALHOST.:PORT beside 127.0.0.1:PORT', async (t) => {
  const be = await echoServer(t);
  const lb = await startLb(t, svc([addr(be)]));
  const api = await startAdmin(t, lb);
  for (const spelling of [
    `[::ffff:127.0.0.1]:${be}`,
    `LOCALHOST.:${be}`,
    `[::FFFF:7f00:1]:${be}`,
  ]) {
    const r = await api.call('POST', `/api/services/web/backends/${encodeURIComponent(spelling)}`);
    assert.equal(r.status, 409, `${spelling}: ${r.text}`);
    assert.match(r.json().error, new RegExp(`127\\.0\\.0\\.1:${be}`));
  }
  assert.deepEqual(addresses(lb), [addr(be)]);
  // A name is kept as written when it is no second spelling of a backend here.
  const other = await echoServer(t);
  const named = await api.call('POST', `/api/services/web/backends/localhost:${other}`);
  assert.equal(named.status, 201, named.text);
  assert.equal(addresses(lb).length, 2);
});

test('item 7: the file and discovery dedupe by the canonical form too', async (t) => {
  for (const second of ['[::ffff:127.0.0.1]:9001', 'LOCALHOST.:9001', 'localhost:9001']) {
    assert.throws(
      () => parseConfig(svc(['127.0.0.1:9001', second]), { allowEphemeralListen: true }),
      /backends\[1\]: duplicate backend/,
      second,
    );
  }
  // The other order too: the literal after the name.
  assert.throws(
    () => parseConfig(svc(['localhost:9001', '127.0.0.1:9001']), { allowEphemeralListen: true }),
    /backends\[1\]: duplicate backend 127\.0\.0\.1:9001 \(localhost:9001\)/,
  );
  const be = await echoServer(t);
  const dir = mkdtempSync(join(tmpdir(), 'blitz-twin-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const list = join(dir, 'backends.json');
  writeFileSync(list, JSON.stringify([`[::ffff:127.0.0.1]:${be}`, `localhost:${be}`]));
  const lb = await startLb(
    t,
    discovering({ kind: 'file', path: list, interval: '50ms' }, { backends: [addr(be)] }),
  );
  const view = () => servicesView(lb).services[0]?.discovery;
  await waitFor(() => Boolean(view()?.lastSuccess), 5000, 'a discovery answer');
  assert.equal(view()?.backends, 0, 'both spellings are the static backend: none is added');
  assert.deepEqual(addresses(lb), [addr(be)]);
});

test('item 7: a name added by the API that resolves (DNS) to a literal backend already there is refused; it is kept as written otherwise', async (t) => {
  // This machine's own name, as /etc/hosts or DNS gives it: no fixed name resolves everywhere.
  const name = hostname().toLowerCase();
  const found = await lookup(name, { all: true }).catch(() => []);
  const ip = found.find((f) => f.family === 4)?.address;
  if (!ip || !/^[a-z0-9-]+(\.[a-z0-9-]+)*$/.test(name) || /\d$/.test(name)) {
    t.skip(`the host name ${name} does not resolve to an IPv4 address here`);
    return;
  }
  const lb = await startLb(t, svc([`${ip}:9001`]));
  const api = await startAdmin(t, lb);
  const r = await api.call('POST', `/api/services/web/backends/${name}:9001`);
  assert.equal(r.status, 409, r.text);
  assert.equal(r.json().error, `backend ${name}:9001 resolves to ${ip}:9001, which already exists`);
  const other = await api.call('POST', `/api/services/web/backends/${name}:9002`);
  assert.equal(other.status, 201, other.text);
  assert.deepEqual(addresses(lb), [`${ip}:9001`, `${name}:9002`].sort());
});
