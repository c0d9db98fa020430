import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import { createRegistry } from '../src/admin/metrics.js';
import { parseConfig } from '../src/config/schema.js';
import type { LoadBalancer } from '../src/load-balancer.js';
import { parseProxyHeader } from '../src/proxy/proxy-protocol.js';
import { certificateReport } from '../src/proxy/tls/certificates.js';
import { runCli, tempConfig } from './helpers/cli.js';
import { have, makeIssuer } from './helpers/issuer.js';
import {
  addr,
  echoServer,
  ended,
  httpServer,
  scriptedServer,
  startLb,
  waitFor,
} from './helpers/servers.js';
import { dialTls } from './helpers/tls-client.js';

const run = promisify(execFile);

function tlsService(
  backend: number,
  tls: Record<string, unknown>,
  extra: Record<string, unknown> = {},
) {
  return {
    log: { level: 'silent' },
    services: {
      web: {
        listen: '127.0.0.1:0',
        backends: [addr(backend)],
        connect_timeout: '500ms',
        health: { kind: 'none' },
        pool: { min_idle: 0 },
        tls,
        ...extra,
      },
    },
  };
}

/** A client certificate's files as the PEM a node:tls client takes. */
function withCert(i: { cert: string; key: string }) {
  return { cert: readFileSync(i.cert), key: readFileSync(i.key) };
}

/** Writes and reads back through an echo backend. */
async function echo(c: Socket, text: string): Promise<string> {
  c.write(text);
  let got = '';
  while (got.length < text.length) {
    const [d] = (await once(c, 'data')) as [Buffer];
    got += d.toString();
  }
  return got;
}

/** A client certificate refused after a TLS 1.3 handshake shows as the connection closing at the first read. */
async function refusedAfterHandshake(port: number, opts: ConnectionOptions): Promise<void> {
  const c = tlsConnect({ port, host: '127.0.0.1', ...opts });
  c.on('error', () => {});
  c.write('ping');
  await ended(c);
  assert.equal(c.bytesRead > 0 && !c.destroyed, false);
  c.destroy();
}

async function metricsText(lb: LoadBalancer): Promise<string> {
  return createRegistry(lb).metrics();
}

test('terminate: clients speak TLS, the backend gets plain TCP; ALPN and the SNI-chosen certificate', async (t) => {
  const pki = makeIssuer(t);
  const a = pki.server(['a.test']);
  const b = pki.server(['b.test', '*.b.test']);
  const backend = await echoServer(t);
  const lb = await startLb(
    t,
    tlsService(backend, {
      certificates: [
        { cert: a.cert, key: a.key },
        { cert: b.cert, key: b.key },
      ],
      alpn: ['h2', 'http/1.1'],
    }),
  );
  const port = lb.address('web').port;
  const c = await dialTls(port, { servername: 'a.test', ca: pki.ca, ALPNProtocols: ['http/1.1'] });
  assert.equal(c.authorized, true);
  assert.equal(c.alpnProtocol, 'http/1.1');
  assert.equal(await echo(c, 'hello in clear at the backend'), 'hello in clear at the backend');
  c.destroy();
  const w = await dialTls(port, { servername: 'www.b.test', ca: pki.ca });
  assert.equal(w.getPeerX509Certificate()?.subject, 'CN=b.test');
  w.destroy();
  // No name: the first pair is the default.
  const n = await dialTls(port, { ca: pki.ca, checkServerIdentity: () => undefined });
  assert.equal(n.getPeerX509Certificate()?.subject, 'CN=a.test');
  n.destroy();
});

test('terminate: send_proxy gives the backend the client address in a PROXY header, then plain bytes', async (t) => {
  const pki = makeIssuer(t);
  const a = pki.server(['a.test']);
  const seen: Buffer[] = [];
  let backendDone: () => void = () => {};
  const got = new Promise<void>((resolve) => {
    backendDone = resolve;
  });
  const backend = await scriptedServer(t, (s) => {
    s.on('data', (d: Buffer) => {
      seen.push(d);
      const all = Buffer.concat(seen);
      if (all.includes('plain text')) backendDone();
    });
  });
  const lb = await startLb(
    t,
    tlsService(backend, { cert: a.cert, key: a.key }, { send_proxy: 'v2' }),
  );
  const c = await dialTls(lb.address('web').port, { servername: 'a.test', ca: pki.ca });
  c.write('plain text');
  await got;
  const all = Buffer.concat(seen);
  const h = parseProxyHeader(all);
  assert.equal(h.state, 'done');
  if (h.state !== 'done') return;
  assert.equal(h.header.addresses?.srcAddr, '127.0.0.1');
  assert.equal(h.header.addresses?.srcPort, c.localPort);
  assert.equal(all.subarray(h.consumed).toString(), 'plain text');
  c.destroy();
});

test('terminate: handshake failures are counted by cause (not TLS, old version, timeout)', async (t) => {
  const pki = makeIssuer(t);
  const a = pki.server(['a.test']);
  const backend = await echoServer(t);
  const lb = await startLb(
    t,
    tlsService(
      backend,
      { cert: a.cert, key: a.key, min_version: 'TLSv1.3' },
      { hello_timeout: '300ms' },
    ),
  );
  const port = lb.address('web').port;
  const raw = connect({ port, host: '127.0.0.1' });
  raw.on('error', () => {});
  raw.write('GET / HTTP/1.1\r\n\r\n');
  await ended(raw);
  await assert.rejects(dialTls(port, { servername: 'a.test', ca: pki.ca, maxVersion: 'TLSv1.2' }));
  const silent = connect({ port, host: '127.0.0.1' });
  silent.on('error', () => {});
  await ended(silent);
  const f = lb.service('web').tlsFailures;
  await waitFor(
    () => f['not-tls'] === 1 && f.version === 1 && f.timeout === 1,
    5000,
    JSON.stringify(f),
  );
  assert.equal(lb.service('web').activeSessions, 0);
  assert.match(
    await metricsText(lb),
    /blitz_lb_tls_handshake_failures_total\{service="web",cause="version"\} 1/,
  );
});

test('terminate: verify_client = "required" takes only certificates from client_ca; "optional" also takes none', async (t) => {
  const pki = makeIssuer(t);
  const a = pki.server(['a.test']);
  const good = pki.client('alice');
  const stranger = pki.selfSigned('mallory');
  const backend = await echoServer(t);
  const lb = await startLb(
    t,
    tlsService(backend, {
      cert: a.cert,
      key: a.key,
      client_ca: pki.caFile,
      verify_client: 'required',
    }),
  );
  const port = lb.address('web').port;
  const ok = await dialTls(port, { servername: 'a.test', ca: pki.ca, ...withCert(good) });
  assert.equal(await echo(ok, 'mtls'), 'mtls');
  ok.destroy();
  await refusedAfterHandshake(port, { servername: 'a.test', ca: pki.ca });
  await refusedAfterHandshake(port, { servername: 'a.test', ca: pki.ca, ...withCert(stranger) });
  await waitFor(() => lb.service('web').tlsFailures['client-cert'] === 2);

  const opt = await startLb(
    t,
    tlsService(backend, {
      cert: a.cert,
      key: a.key,
      client_ca: pki.caFile,
      verify_client: 'optional',
    }),
  );
  const oport = opt.address('web').port;
  const anon = await dialTls(oport, { servername: 'a.test', ca: pki.ca });
  assert.equal(await echo(anon, 'no cert is fine'), 'no cert is fine');
  anon.destroy();
  const known = await dialTls(oport, { servername: 'a.test', ca: pki.ca, ...withCert(good) });
  assert.equal(await echo(known, 'a good one too'), 'a good one too');
  known.destroy();
  await refusedAfterHandshake(oport, { servername: 'a.test', ca: pki.ca, ...withCert(stranger) });
  await waitFor(() => opt.service('web').tlsFailures['client-cert'] === 1);
});

test('terminate: with several certificates chosen by SNI, client certificates are still verified against client_ca', async (t) => {
  const pki = makeIssuer(t);
  const a = pki.server(['a.test']);
  const b = pki.server(['b.test']);
  const good = pki.client('alice');
  const stranger = pki.selfSigned('mallory');
  const backend = await echoServer(t);
  const lb = await startLb(
    t,
    tlsService(backend, {
      certificates: [
        { cert: a.cert, key: a.key },
        { cert: b.cert, key: b.key },
      ],
      client_ca: pki.caFile,
      verify_client: 'required',
    }),
  );
  const port = lb.address('web').port;
  for (const name of ['a.test', 'b.test']) {
    const ok = await dialTls(port, { servername: name, ca: pki.ca, ...withCert(good) });
    assert.equal(await echo(ok, `mtls ${name}`), `mtls ${name}`);
    ok.destroy();
  }
  await refusedAfterHandshake(port, { servername: 'b.test', ca: pki.ca, ...withCert(stranger) });
  await waitFor(() => lb.service('web').tlsFailures['client-cert'] === 1);
});

test('terminate: reload re-reads certificates; an open session keeps working, new handshakes get the new one; a bad file keeps the old', async (t) => {
  const pki = makeIssuer(t);
  const first = pki.server(['a.test'], 'live');
  const live = { cert: join(pki.dir, 'live-in-use.pem'), key: join(pki.dir, 'live-in-use.key') };
  copyFileSync(first.cert, live.cert);
  copyFileSync(first.key, live.key);
  const backend = await echoServer(t);
  const raw = tlsService(backend, live);
  const lb = await startLb(t, raw);
  const port = lb.address('web').port;
  const open = await dialTls(port, { servername: 'a.test', ca: pki.ca });
  const serial1 = open.getPeerX509Certificate()?.serialNumber;
  // Renewed in place, as certbot does: same file names, new certificate.
  const renewed = pki.server(['a.test'], 'live');
  copyFileSync(renewed.cert, live.cert);
  copyFileSync(renewed.key, live.key);
  const cfg = () => parseConfig(raw, { allowEphemeralListen: true });
  const summary = await lb.reload(cfg());
  assert.equal(summary.warnings, undefined);
  const fresh = await dialTls(port, { servername: 'a.test', ca: pki.ca });
  const serial2 = fresh.getPeerX509Certificate()?.serialNumber;
  assert.notEqual(serial2, serial1, 'a new handshake sees the renewed certificate');
  assert.equal(
    await echo(open, 'still here'),
    'still here',
    'the session opened before the reload',
  );
  fresh.destroy();
  // A broken file: the reload reports it, and the renewed certificate stays in force.
  writeFileSync(live.cert, 'not a certificate');
  const bad = await lb.reload(cfg());
  assert.match(
    bad.warnings?.[0] ?? '',
    /services\.web\.tls: certificate .*live-in-use\.pem: not a PEM certificate; the previous certificates stay in force/,
  );
  const after = await dialTls(port, { servername: 'a.test', ca: pki.ca });
  assert.equal(after.getPeerX509Certificate()?.serialNumber, serial2);
  assert.equal(await echo(open, 'and still'), 'and still');
  after.destroy();
  open.destroy();
});

test('terminate: SNI routing and termination share a listener: one name passes through, another is terminated', async (t) => {
  const pki = makeIssuer(t);
  const term = pki.server(['term.test']);
  const plain = await echoServer(t);
  const passCert = pki.server(['pass.test']);
  const { createServer } = await import('node:tls');
  const passBackend = createServer(
    { cert: readFileSync(passCert.cert), key: readFileSync(passCert.key) },
    (s) => {
      s.on('error', () => {});
      s.end('passed through');
    },
  );
  const { listen } = await import('./helpers/servers.js');
  const passPort = await listen(t, passBackend as never);
  const base = {
    connect_timeout: '500ms',
    health: { kind: 'none' },
    pool: { min_idle: 0 },
    listen: '127.0.0.1:0',
  };
  const lb = await startLb(t, {
    log: { level: 'silent' },
    services: {
      pass: { ...base, backends: [addr(passPort)], sni: ['pass.test'] },
      term: {
        ...base,
        backends: [addr(plain)],
        sni: ['term.test'],
        tls: { cert: term.cert, key: term.key },
      },
    },
  });
  const port = lb.address('pass').port;
  const p = await dialTls(port, { servername: 'pass.test', ca: pki.ca });
  const [d] = (await once(p, 'data')) as [Buffer];
  assert.equal(d.toString(), 'passed through');
  p.destroy();
  const c = await dialTls(port, { servername: 'term.test', ca: pki.ca });
  assert.equal(await echo(c, 'terminated here'), 'terminated here');
  c.destroy();
});

test('terminate: curl and openssl s_client against a terminating listener', async (t) => {
  for (const cmd of ['openssl', 'curl']) {
    if (!have(cmd)) {
      assert.notEqual(process.env.CI, 'true', `${cmd} is installed by .ci/run`);
      t.skip(`${cmd} not installed`);
      return;
    }
  }
  const pki = makeIssuer(t);
  const a = pki.server(['a.test']);
  const backend = await httpServer(t, 'plain-backend');
  const lb = await startLb(
    t,
    tlsService(backend, { cert: a.cert, key: a.key, alpn: ['http/1.1'] }),
  );
  const port = lb.address('web').port;
  const curl = await run('curl', [
    '-sS',
    '--cacert',
    pki.caFile,
    '--resolve',
    `a.test:${port}:127.0.0.1`,
    `https://a.test:${port}/`,
  ]);
  assert.match(curl.stdout, /plain-backend/);
  const s = await run('sh', [
    '-c',
    `echo | openssl s_client -connect 127.0.0.1:${port} -servername a.test -CAfile ${pki.caFile} -alpn http/1.1 2>&1`,
  ]);
  assert.match(s.stdout, /Verify return code: 0 \(ok\)/);
  assert.match(s.stdout, /ALPN protocol: http\/1\.1/);
});

test('check: a key that does not match its certificate, a missing file and an expired certificate are reported', async (t) => {
  const pki = makeIssuer(t);
  const a = pki.server(['a.test']);
  const other = pki.server(['b.test']);
  const cfg = (tls: string) =>
    tempConfig(
      t,
      `[services.web]\nlisten = "127.0.0.1:18443"\nbackends = ["127.0.0.1:9001"]\n[services.web.tls]\n${tls}\n`,
    );
  const okRun = runCli(['check', '--config', cfg(`cert = "${a.cert}"\nkey = "${a.key}"`)]);
  assert.equal(okRun.status, 0, okRun.stderr);
  assert.match(
    okRun.stdout,
    /tls .*a\.test\.pem: DNS:a\.test; expires \d{4}-\d\d-\d\d \(WARNING: expires in [01] days\)/,
  );
  const mismatch = runCli(['check', '--config', cfg(`cert = "${a.cert}"\nkey = "${other.key}"`)]);
  assert.equal(mismatch.status, 2);
  assert.match(
    mismatch.stderr,
    /services\.web\.tls: key .*b\.test\.key does not match certificate .*a\.test\.pem/,
  );
  const missing = runCli(['check', '--config', cfg(`cert = "nope.pem"\nkey = "${a.key}"`)]);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /certificate .*nope\.pem: cannot read it: no such file/);
  // `run` refuses the same, before binding anything.
  const runMissing = runCli(['run', '--config', cfg(`cert = "nope.pem"\nkey = "${a.key}"`)]);
  assert.equal(runMissing.status, 2);
  // Expiry, seen from three days on (the test CA issues for two).
  const later = certificateReport(
    [
      {
        name: 'web',
        tls:
          parseConfig({
            services: {
              web: {
                listen: '127.0.0.1:1',
                backends: ['127.0.0.1:2'],
                tls: { cert: a.cert, key: a.key },
              },
            },
          }).services[0]?.tls ?? null,
      },
    ],
    'x.toml',
    Date.now() + 3 * 86_400_000,
  );
  assert.match(
    later.expired[0] ?? '',
    /^x\.toml: services\.web\.tls: certificate .*a\.test\.pem EXPIRED on/,
  );
});

test('terminate: a reload that changes handshake settings (ALPN) applies to new handshakes; the open session carries on', async (t) => {
  const pki = makeIssuer(t);
  const a = pki.server(['a.test']);
  const backend = await echoServer(t);
  const raw = (alpn: string[]) => tlsService(backend, { cert: a.cert, key: a.key, alpn });
  const lb = await startLb(t, raw(['http/1.1']));
  const port = lb.address('web').port;
  const open = await dialTls(port, {
    servername: 'a.test',
    ca: pki.ca,
    ALPNProtocols: ['h2', 'http/1.1'],
  });
  assert.equal(open.alpnProtocol, 'http/1.1');
  await lb.reload(parseConfig(raw(['h2', 'http/1.1']), { allowEphemeralListen: true }));
  const fresh = await dialTls(port, {
    servername: 'a.test',
    ca: pki.ca,
    ALPNProtocols: ['h2', 'http/1.1'],
  });
  assert.equal(fresh.alpnProtocol, 'h2');
  assert.equal(await echo(open, 'before the reload'), 'before the reload');
  fresh.destroy();
  open.destroy();
});

/** A raw TCP client that sends a real ClientHello and then stalls mid-handshake; resolves once the server answered. */
async function stalledHandshake(port: number): Promise<Socket> {
  const { captureHello } = await import('./helpers/hello.js');
  const hello = await captureHello({ servername: 'a.test' });
  const c = connect({ port, host: '127.0.0.1' });
  c.on('error', () => {});
  await once(c, 'connect');
  c.write(hello);
  return c;
}

test('terminate: per-source limits apply before the handshake, and shutdown ends clients caught mid-handshake', async (t) => {
  const pki = makeIssuer(t);
  const a = pki.server(['a.test']);
  const backend = await echoServer(t);
  const lb = await startLb(
    t,
    tlsService(
      backend,
      { cert: a.cert, key: a.key },
      { max_connections_per_source: 1, hello_timeout: '30s' },
    ),
  );
  const port = lb.address('web').port;
  const first = await stalledHandshake(port);
  const [serverHello] = (await once(first, 'data')) as [Buffer];
  assert.equal(serverHello[0], 0x16, 'the first client got its ServerHello');
  // The second from the same source is over the limit: closed with no handshake at all.
  const second = await stalledHandshake(port);
  let got = 0;
  second.on('data', (d: Buffer) => {
    got += d.length;
  });
  await once(second, 'close');
  assert.equal(got, 0, 'no ServerHello for a source over its limit');
  assert.equal(lb.service('web').counters.refusedSourceConnections, 1);
  // Shutdown does not wait out hello_timeout (30 s) for the stalled one.
  const closed = once(first, 'close');
  await lb.close(200);
  await closed;
});

test('terminate: a per-source lease taken before the handshake is released when the session ends', async (t) => {
  const pki = makeIssuer(t);
  const a = pki.server(['a.test']);
  const backend = await echoServer(t);
  const lb = await startLb(
    t,
    tlsService(backend, { cert: a.cert, key: a.key }, { max_connections_per_source: 1 }),
  );
  const port = lb.address('web').port;
  for (let i = 0; i < 3; i++) {
    // One at a time from one source: each must be served, so each lease came back.
    const c = await dialTls(port, { servername: 'a.test', ca: pki.ca });
    assert.equal(await echo(c, `turn ${i}`), `turn ${i}`);
    c.destroy();
    await waitFor(() => lb.service('web').activeSessions === 0, 3000, 'session to end');
  }
  assert.equal(lb.service('web').counters.refusedSourceConnections, 0);
});
