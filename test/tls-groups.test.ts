import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { parseConfig } from '../src/config/schema.js';
import { runCli, tempConfig } from './helpers/cli.js';
import { makeIssuer } from './helpers/issuer.js';
import { addr, echoServer, startLb, svc, waitFor } from './helpers/servers.js';
import { dialTls } from './helpers/tls-client.js';

/** [services.web.tls] in front of one backend. */
function tlsService(backend: number, tls: Record<string, unknown>) {
  return svc([addr(backend)], { tls });
}

/** The key exchange group the handshake used, by the client's reading. */
function groupOf(c: TLSSocket): string | undefined {
  return (c.getEphemeralKeyInfo() as { name?: string }).name;
}

test('tls groups: the listed groups are the only ones offered; a client without one of them is refused', async (t) => {
  const pki = makeIssuer(t);
  const a = pki.server(['a.test']);
  const backend = await echoServer(t);
  const lb = await startLb(t, tlsService(backend, { cert: a.cert, key: a.key, groups: ['P-256'] }));
  const port = lb.address('web').port;
  // The client offers X25519 first (and, on OpenSSL 3.5, X25519MLKEM768): the server takes P-256.
  const c = await dialTls(port, { servername: 'a.test', ca: pki.ca });
  assert.equal(groupOf(c), 'prime256v1');
  // Through to the backend and back: the server's side of the handshake is done too.
  c.write('ping');
  const [back] = (await once(c, 'data')) as [Buffer];
  assert.equal(back.toString(), 'ping');
  c.destroy();
  await assert.rejects(
    dialTls(port, { servername: 'a.test', ca: pki.ca, ecdhCurve: 'X25519' }),
    /handshake failure|closed|ECONNRESET|alert/i,
  );
  // Counted like any failed handshake.
  const f = lb.service('web').tlsFailures;
  await waitFor(
    () => f.other === 1 && Object.values(f).reduce((n, x) => n + x, 0) === 1,
    5000,
    JSON.stringify(f),
  );
});

test('tls groups: unset, the runtime OpenSSL chooses (X25519MLKEM768 on OpenSSL 3.5, else X25519)', async (t) => {
  const pki = makeIssuer(t);
  const a = pki.server(['a.test']);
  const backend = await echoServer(t);
  const lb = await startLb(t, tlsService(backend, { cert: a.cert, key: a.key }));
  const c = await dialTls(lb.address('web').port, { servername: 'a.test', ca: pki.ca });
  const [major = 0, minor = 0] = process.versions.openssl.split('.').map(Number);
  assert.equal(groupOf(c), major > 3 || (major === 3 && minor >= 5) ? 'X25519MLKEM768' : 'X25519');
  c.destroy();
});

test('tls groups: a malformed list is a config error naming the key; an unknown group fails check and run', async (t) => {
  const pki = makeIssuer(t);
  const a = pki.server(['a.test']);
  const bad = (groups: unknown) => () =>
    parseConfig({
      services: {
        web: {
          listen: '127.0.0.1:1',
          backends: ['127.0.0.1:2'],
          tls: { cert: a.cert, key: a.key, groups },
        },
      },
    });
  assert.throws(bad([]), /services\.web\.tls\.groups: expected a non-empty array/);
  assert.throws(bad('X25519'), /services\.web\.tls\.groups: expected a non-empty array/);
  assert.throws(bad(['X25519', 'x y']), /services\.web\.tls\.groups\[1\]: expected a group name/);
  assert.throws(
    bad(['P-256', 'P-256']),
    /services\.web\.tls\.groups\[1\]: "P-256" is listed twice/,
  );
  const cfg = tempConfig(
    t,
    `[services.web]\nlisten = "127.0.0.1:18443"\nbackends = ["127.0.0.1:9001"]\n[services.web.tls]\ncert = "${a.cert}"\nkey = "${a.key}"\ngroups = ["X25519", "NoSuchGroup"]\n`,
  );
  const check = runCli(['check', '--config', cfg]);
  assert.equal(check.status, 2);
  assert.match(
    check.stderr,
    /services\.web\.tls\.groups: groups \["X25519","NoSuchGroup"\]: .*does not know/,
  );
  const run = runCli(['run', '--config', cfg]);
  assert.equal(run.status, 2);
  assert.match(run.stderr, /services\.web\.tls\.groups/);
});
