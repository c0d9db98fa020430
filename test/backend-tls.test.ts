import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { connect, type Server } from 'node:net';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { createServer as createTlsServer } from 'node:tls';
import { parseConfig } from '../src/config/schema.js';
import { runCli } from './helpers/cli.js';
import { runBalancer, twoWorkers } from './helpers/cluster.js';
import { logLines } from './helpers/log-lines.js';
import { makePki, type Pair } from './helpers/pki.js';
import {
  addr,
  httpGet,
  listen,
  openClient,
  readBytes,
  refusedPort,
  scriptedServer,
  startLb,
  svc,
  waitFor,
} from './helpers/servers.js';

interface Conn {
  id: number;
  servername: string | false | null;
  reused: boolean;
  peer: string;
  closed: boolean;
  /** What the balancer sent on it. */
  got: string;
}

/**
 * A TLS backend on port 0 that records each handshaken connection (its SNI
 * name, whether it resumed, the client certificate's CN) and answers each
 * chunk with "ID:chunk", so a reply names the connection that carried it.
 */
async function tlsBackend(
  t: TestContext,
  pair: Pair,
  opts: { banner?: boolean; clientCa?: Buffer } = {},
): Promise<{ port: number; conns: Conn[] }> {
  const conns: Conn[] = [];
  const mtls = opts.clientCa
    ? { requestCert: true, rejectUnauthorized: true, ca: opts.clientCa }
    : {};
  const server = createTlsServer({ key: pair.key, cert: pair.cert, ...mtls }, (s) => {
    const c: Conn = {
      id: conns.length + 1,
      servername: s.servername,
      reused: s.isSessionReused(),
      peer: String(s.getPeerCertificate()?.subject?.CN),
      closed: false,
      got: '',
    };
    conns.push(c);
    s.on('error', () => {});
    s.on('close', () => {
      c.closed = true;
    });
    if (opts.banner) s.write(`banner#${c.id}\n`);
    s.on('data', (d: Buffer) => {
      c.got += d.toString();
      s.write(`${c.id}:${d.toString()}`);
    });
    s.on('end', () => s.end());
  });
  server.on('tlsClientError', () => {});
  const port = await listen(t, server as unknown as Server);
  return { port, conns };
}

/** Writes `msg` through the balancer on a fresh client and reads the "ID:msg" reply. */
async function roundTrip(lbPort: number, msg: string): Promise<string> {
  const c = await openClient(lbPort);
  c.write(msg);
  const reply = await readBytes(c, msg.length + 2);
  c.destroy();
  return reply.toString();
}

/** A logger whose JSON lines land in `lines`. */
function captureLog() {
  const { lines, logger: sinkLogger } = logLines();
  return { lines, logger: sinkLogger };
}

test('backend_tls: dials verify against the CA and send the configured name; an IP backend without servername is verified by its address', async (t) => {
  const pki = makePki(t);
  const be = await tlsBackend(t, pki.server);
  const named = await startLb(
    t,
    svc([addr(be.port)], { backend_tls: { ca: pki.ca.certFile, servername: 'backend.test' } }),
  );
  assert.equal(await roundTrip(named.address('web').port, 'hello'), '1:hello');
  assert.equal(be.conns[0]?.servername, 'backend.test');

  const byIp = await startLb(t, svc([addr(be.port)], { backend_tls: { ca: pki.ca.certFile } }));
  assert.equal(await roundTrip(byIp.address('web').port, 'again'), '2:again');
  assert.equal(be.conns[1]?.servername, false, 'no SNI for an IP address (RFC 6066)');
});

test('backend_tls: a backend with a wrong certificate is a dial failure with a tls cause, counted against it, shown in the access log; another backend serves', async (t) => {
  const pki = makePki(t);
  const rogue = await tlsBackend(t, pki.rogue);
  const wrongName = await tlsBackend(t, pki.wrongName);
  const good = await tlsBackend(t, pki.server);
  const { lines, logger } = captureLog();
  const raw = svc([addr(rogue.port), addr(wrongName.port), addr(good.port)], {
    backend_tls: { ca: pki.ca.certFile, servername: 'backend.test' },
    max_retries: 2,
    health: { kind: 'none', fall: 1 },
  });
  const lb = await startLb(t, { ...raw, log: { level: 'info', access: true } }, { logger });
  const s = lb.service('web');
  const port = lb.address('web').port;
  const rogueB = s.backends.get(addr(rogue.port));
  const wrongB = s.backends.get(addr(wrongName.port));
  for (let i = 0; i < 6 && (rogueB?.healthy || wrongB?.healthy); i++) {
    const reply = await roundTrip(port, 'ping');
    assert.match(reply, /^\d+:ping$/, 'every client is served');
  }
  assert.equal(good.conns.length > 0, true);
  assert.equal(
    [...rogue.conns, ...wrongName.conns].filter((c) => c.got !== '').length,
    0,
    'no client byte reached a bad backend',
  );
  assert.equal(rogueB?.healthy, false);
  assert.equal(rogueB?.downReason, 'dial: tls: unable to verify the first certificate');
  assert.equal(wrongB?.healthy, false);
  assert.equal(wrongB?.downReason, 'dial: tls: certificate is not valid for "backend.test"');
  await waitFor(() => lines.some((l) => l.log === 'access' && Array.isArray(l.dialFailures)));
  const failures = lines.flatMap((l) =>
    Array.isArray(l.dialFailures) ? (l.dialFailures as { backend: string; cause: string }[]) : [],
  );
  assert.deepEqual(
    failures.find((f) => f.backend === addr(rogue.port)),
    { backend: addr(rogue.port), cause: 'tls: unable to verify the first certificate' },
  );
  const served = lines.find((l) => Array.isArray(l.dialFailures));
  assert.equal(served?.backend, addr(good.port), 'the access line names the backend that served');
  assert.equal(served?.cause, 'client-closed');
});

test('backend_tls: a backend that speaks plain HTTP is a dial failure ("tls: wrong version number"), not a session', async (t) => {
  const pki = makePki(t);
  const plain = await scriptedServer(t, (s) => {
    s.once('data', () => s.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
  });
  const lb = await startLb(
    t,
    svc([addr(plain)], { backend_tls: { ca: pki.ca.certFile }, max_retries: 0 }),
  );
  const err = await lb.connect('web').then(
    () => null,
    (e: Error & { attempts?: { cause: string }[] }) => e,
  );
  assert.ok(err, 'the connect failed');
  assert.deepEqual(err.attempts, [{ backend: addr(plain), cause: 'tls: wrong version number' }]);
});

test('backend_tls: connect_timeout covers the handshake: a backend that accepts and never answers fails with "tls handshake timeout"', async (t) => {
  const pki = makePki(t);
  const silent = await scriptedServer(t, (s) => s.resume());
  const lb = await startLb(
    t,
    svc([addr(silent)], {
      backend_tls: { ca: pki.ca.certFile },
      connect_timeout: '200ms',
      max_retries: 0,
    }),
  );
  const err = await lb.connect('web').then(
    () => null,
    (e: Error & { attempts?: { cause: string }[] }) => e,
  );
  assert.deepEqual(err?.attempts, [
    { backend: addr(silent), cause: 'tls handshake timeout 200ms' },
  ]);
});

test('backend_tls: a client that resets ends its TLS backend leg at once; one that half-closes gets the reply', async (t) => {
  const pki = makePki(t);
  const be = await tlsBackend(t, pki.server);
  const lb = await startLb(
    t,
    svc([addr(be.port)], { backend_tls: { ca: pki.ca.certFile, servername: 'backend.test' } }),
  );
  const port = lb.address('web').port;
  const c = await openClient(port);
  c.write('a');
  assert.equal((await readBytes(c, 3)).toString(), '1:a');
  c.resetAndDestroy();
  await waitFor(() => be.conns[0]?.closed === true, 3000, 'the backend leg closed');
  await waitFor(() => lb.service('web').activeSessions === 0, 3000, 'the session ended');

  // Half-close: the client's FIN becomes close_notify + FIN; the backend still answers after it.
  const h = await openClient(port);
  h.end('b');
  assert.equal((await readBytes(h, 3)).toString(), '2:b');
  h.destroy();
});

test('backend_tls: mTLS, the backend requires and gets the client certificate', async (t) => {
  const pki = makePki(t);
  const be = await tlsBackend(t, pki.server, { clientCa: pki.ca.cert });
  const lb = await startLb(
    t,
    svc([addr(be.port)], {
      backend_tls: {
        ca: pki.ca.certFile,
        servername: 'backend.test',
        cert: pki.client.certFile,
        key: pki.client.keyFile,
      },
    }),
  );
  assert.equal(await roundTrip(lb.address('web').port, 'mtls'), '1:mtls');
  assert.equal(be.conns[0]?.peer, 'blitz-lb client');
});

test('backend_tls + pool: a client is served by a socket handshaken before it came, with the backend greeting it sent while idle', async (t) => {
  const pki = makePki(t);
  const be = await tlsBackend(t, pki.server, { banner: true });
  const lb = await startLb(
    t,
    svc([addr(be.port)], {
      backend_tls: { ca: pki.ca.certFile, servername: 'backend.test' },
      pool: { min_idle: 1, max_idle: 1 },
    }),
  );
  const s = lb.service('web');
  const b = s.backends.get(addr(be.port));
  assert.ok(b);
  await waitFor(() => s.pool.idleFor(b) === 1 && be.conns.length === 1, 3000, 'a warm TLS socket');
  const c = await openClient(lb.address('web').port);
  assert.equal((await readBytes(c, 'banner#1\n'.length)).toString(), 'banner#1\n');
  c.write('x');
  assert.equal((await readBytes(c, 3)).toString(), '1:x', 'connection 1, handshaken while idle');
  c.destroy();
  assert.equal(s.pool.counters.hits, 1);
});

test('backend_tls + pool: refills resume the TLS session of the one before (a ticket cache per backend)', async (t) => {
  const pki = makePki(t);
  const be = await tlsBackend(t, pki.server);
  const lb = await startLb(
    t,
    svc([addr(be.port)], {
      backend_tls: { ca: pki.ca.certFile, servername: 'backend.test' },
      pool: { min_idle: 1, max_idle: 1 },
    }),
  );
  const s = lb.service('web');
  const b = s.backends.get(addr(be.port));
  assert.ok(b);
  // TLS 1.3 tickets come after the handshake: wait until the idle socket has its ticket.
  await waitFor(
    () => s.pool.idleFor(b) === 1 && s.backendTls?.session(b, 'backend.test') !== undefined,
    3000,
    'a warm socket and its ticket',
  );
  assert.equal(await roundTrip(lb.address('web').port, 'one'), '1:one');
  await waitFor(() => be.conns.length === 2, 3000, 'the refill');
  assert.equal(be.conns[0]?.reused, false, 'the first connection is a full handshake');
  assert.equal(be.conns[1]?.reused, true, 'the refill resumed');
  assert.equal(await roundTrip(lb.address('web').port, 'two'), '2:two');
});

test('backend_tls + pool: a take leaves the refill handshake until after the taking client’s first exchange, unless it took the last spare', async (t) => {
  const pki = makePki(t);
  const be = await tlsBackend(t, pki.server);
  const lb = await startLb(
    t,
    svc([addr(be.port)], {
      backend_tls: { ca: pki.ca.certFile, servername: 'backend.test' },
      pool: { min_idle: 2, max_idle: 2 },
    }),
  );
  const s = lb.service('web');
  const b = s.backends.get(addr(be.port));
  assert.ok(b);
  await waitFor(() => s.pool.idleFor(b) === 2, 3000, 'two warm TLS sockets');
  const nextTick = (): Promise<void> => new Promise((r) => setImmediate(r));
  const first = s.pool.take(b);
  assert.ok(first);
  t.after(() => first.socket.destroy());
  await nextTick();
  // A refill run at once (the check phase after the take) would be connecting by now.
  assert.equal(s.pool.connectingFor(b), 0, 'a spare remains: the refill waits');
  await waitFor(() => s.pool.idleFor(b) === 2, 3000, 'the deferred refill');
  const second = s.pool.take(b);
  const third = s.pool.take(b);
  assert.ok(second && third);
  t.after(() => {
    second.socket.destroy();
    third.socket.destroy();
  });
  await nextTick();
  assert.equal(s.pool.connectingFor(b), 2, 'the last spare taken: the refill runs at once');
});

test('health.tls: TCP probes complete the handshake and mark a backend with a bad certificate down; plain TCP probes would not', async (t) => {
  const pki = makePki(t);
  const rogue = await tlsBackend(t, pki.rogue);
  const good = await tlsBackend(t, pki.server);
  const backends = [addr(rogue.port), addr(good.port)];
  const tls = { ca: pki.ca.certFile, servername: 'backend.test' };
  const probed = await startLb(
    t,
    svc(backends, { backend_tls: tls, health: { kind: 'tcp', interval: '1h' } }),
  );
  const s = probed.service('web');
  await s.probeNow();
  assert.equal(s.backends.get(addr(rogue.port))?.healthy, false);
  assert.equal(
    s.backends.get(addr(rogue.port))?.downReason,
    'probe: tls: unable to verify the first certificate',
  );
  assert.equal(s.backends.get(addr(good.port))?.healthy, true);

  const plain = await startLb(
    t,
    svc(backends, { backend_tls: tls, health: { kind: 'tcp', interval: '1h', tls: false } }),
  );
  await plain.service('web').probeNow();
  assert.equal(plain.service('web').backends.get(addr(rogue.port))?.healthy, true);
});

test('health kind http with backend_tls: probes are HTTPS, verified like dials', async (t) => {
  const pki = makePki(t);
  const start = async (pair: Pair): Promise<number> => {
    const server = createHttpsServer({ key: pair.key, cert: pair.cert }, (req, res) => {
      res.statusCode = req.url === '/health' ? 200 : 404;
      res.end();
    });
    return listen(t, server as unknown as Server);
  };
  const good = await start(pki.server);
  const rogue = await start(pki.rogue);
  const lb = await startLb(
    t,
    svc([addr(good), addr(rogue)], {
      backend_tls: { ca: pki.ca.certFile, servername: 'backend.test' },
      health: { kind: 'http', path: '/health', interval: '1h' },
    }),
  );
  const s = lb.service('web');
  await s.probeNow();
  assert.equal(s.backends.get(addr(good))?.healthy, true);
  assert.equal(s.backends.get(addr(good))?.lastCheck?.detail, 'HTTP 200');
  assert.equal(s.backends.get(addr(rogue))?.healthy, false);
  assert.equal(
    s.backends.get(addr(rogue))?.downReason,
    'probe: tls: unable to verify the first certificate',
  );
});

test('reload: changed backend_tls flushes the pool; new sockets use the new settings', async (t) => {
  const pki = makePki(t);
  const be = await tlsBackend(t, pki.server);
  const raw = (servername: string) =>
    svc([addr(be.port)], {
      backend_tls: { ca: pki.ca.certFile, servername },
      pool: { min_idle: 1, max_idle: 1 },
    });
  const lb = await startLb(t, raw('backend.test'));
  await waitFor(() => be.conns.length === 1, 3000, 'the first warm socket');
  assert.equal(be.conns[0]?.servername, 'backend.test');
  await lb.reload(parseConfig(raw('alt.test'), { source: '<test>', allowEphemeralListen: true }));
  await waitFor(
    () => be.conns[0]?.closed === true && be.conns.some((c) => c.servername === 'alt.test'),
    3000,
    'the old socket closed and a new one made under the new name',
  );
  const fresh = be.conns.find((c) => c.servername === 'alt.test');
  assert.equal(await roundTrip(lb.address('web').port, 'new'), `${fresh?.id}:new`);
});

test('backend_tls with workers = 2: the workers dial and pool over TLS, the primary probes over TLS', async (t) => {
  const pki = makePki(t);
  const good = await tlsBackend(t, pki.server);
  const rogue = await tlsBackend(t, pki.rogue);
  const lb = await runBalancer(
    t,
    twoWorkers(
      [addr(good.port), addr(rogue.port)],
      [
        `backend_tls = { ca = "${pki.ca.certFile}", servername = "backend.test" }`,
        'pool = { min_idle = 1 }',
        'health = { kind = "tcp", interval = "200ms" }',
      ],
    ),
  );
  type View = { services: { backends: { address: string; state: string }[] }[] };
  const stateOf = async (a: string) =>
    ((await lb.admin('/api/services')).body as View).services[0]?.backends.find(
      (b) => b.address === a,
    )?.state;
  await waitFor(async () => (await stateOf(addr(rogue.port))) === 'down', 5000, 'rogue down');
  assert.equal(await stateOf(addr(good.port)), 'up');
  for (let i = 0; i < 4; i++) assert.match(await roundTrip(lb.port, 'w'), /^\d+:w$/);
  assert.equal(rogue.conns.filter((c) => c.got !== '').length, 0);
});

test('backend_tls config: clear errors for missing files, bad PEM, a key that is not the certificate’s, bad values', (t) => {
  const pki = makePki(t);
  const garbage = join(pki.dir, 'garbage.pem');
  writeFileSync(garbage, 'not a certificate\n');
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ ca: join(pki.dir, 'nope.pem') }, /backend_tls\.ca: cannot read .*nope\.pem: no such file/],
    [{ ca: garbage }, /backend_tls\.ca: .*garbage\.pem holds no PEM certificate/],
    [
      { cert: pki.client.certFile, key: pki.server.keyFile },
      /backend_tls\.key: .*server\.key is not the private key of the certificate in .*client\.pem/,
    ],
    [
      { cert: pki.client.certFile, key: garbage },
      /backend_tls\.key: .*garbage\.pem holds no usable PEM private key/,
    ],
    [{ cert: pki.client.certFile }, /backend_tls\.key: missing; a client certificate needs both/],
    [
      { min_version: 'TLSv1.1' },
      /backend_tls\.min_version: expected one of TLSv1\.2 \| TLSv1\.3, got "TLSv1\.1"/,
    ],
    [
      { servername: '10.0.0.1' },
      /backend_tls\.servername: an IP address cannot be a TLS server name/,
    ],
    [{ alpn: 'h2' }, /backend_tls\.alpn: expected an array/],
    [{ verfy: false }, /backend_tls\.verfy: unknown key; did you mean "verify"\?/],
    [{ verify: 'no' }, /backend_tls\.verify: expected true or false/],
  ];
  for (const [tls, message] of cases) {
    assert.throws(
      () => parseConfig(svc(['127.0.0.1:1'], { backend_tls: tls }), { allowEphemeralListen: true }),
      { message },
      JSON.stringify(tls),
    );
  }
  assert.throws(
    () =>
      parseConfig(svc(['127.0.0.1:1'], { health: { kind: 'tcp', tls: true } }), {
        allowEphemeralListen: true,
      }),
    { message: /health\.tls: probing over TLS needs \[services\.NAME\.backend_tls\]/ },
  );
  assert.throws(
    () =>
      parseConfig(svc(['127.0.0.1:1'], { send_proxy: 'v2', backend_tls: {} }), {
        allowEphemeralListen: true,
      }),
    { message: /send_proxy: cannot be combined with backend_tls/ },
  );
  const ok = parseConfig(svc(['127.0.0.1:1'], { backend_tls: {} }), { allowEphemeralListen: true });
  assert.equal(ok.services[0]?.backendTls?.verify, true, 'verify is on unless written off');
  assert.equal(ok.services[0]?.health.tls, true, 'probes follow backend_tls');
});

test('check: file names relative to the config, a summary line, and a warning for verify = false', async (t) => {
  const pki = makePki(t);
  const port = await refusedPort();
  const file = join(pki.dir, 'lb.toml');
  writeFileSync(
    file,
    `[services.web]
listen = "127.0.0.1:${port}"
backends = ["backend.internal:443"]
[services.web.backend_tls]
ca = "ca.pem"
cert = "client.pem"
key = "client.key"
verify = false
`,
  );
  const r = runCli(['check', '--config', file]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(
    r.stdout,
    /backend_tls: verify OFF, servername the backend's host name, min_version TLSv1\.2, client certificate client\.pem, health probes over TLS/,
  );
  assert.match(
    r.stdout,
    /warning: services\.web\.backend_tls\.verify: false, so backend certificates are not checked/,
  );
  writeFileSync(file, readFileSync(file, 'utf8').replace('client.key', 'ca.key'));
  const bad = runCli(['check', '--config', file]);
  assert.equal(bad.status, 2);
  assert.match(
    bad.stderr,
    /lb\.toml: services\.web\.backend_tls\.key: ca\.key is not the private key/,
  );
});

test('nginx as a TLS backend, through the warm pool', async (t) => {
  const nginx = '/usr/sbin/nginx';
  if (!existsSync(nginx)) {
    assert.notEqual(process.env.CI, 'true', 'nginx is installed by .ci/run');
    t.skip('nginx not installed');
    return;
  }
  const pki = makePki(t);
  const port = await refusedPort();
  const dir = pki.dir;
  writeFileSync(
    join(dir, 'nginx.conf'),
    `daemon off; master_process off; worker_processes 1; error_log ${dir}/error.log; pid ${dir}/nginx.pid;
events { worker_connections 64; }
http { access_log off; client_body_temp_path ${dir}/cb; proxy_temp_path ${dir}/p; fastcgi_temp_path ${dir}/f; uwsgi_temp_path ${dir}/u; scgi_temp_path ${dir}/s;
  server { listen 127.0.0.1:${port} ssl; ssl_certificate ${pki.server.certFile}; ssl_certificate_key ${pki.server.keyFile};
    location / { return 200 "$ssl_server_name $ssl_session_reused"; } } }`,
  );
  const proc = spawn(nginx, ['-c', join(dir, 'nginx.conf'), '-p', dir], { stdio: 'ignore' });
  t.after(() => proc.kill('SIGKILL'));
  await waitFor(
    () =>
      new Promise<boolean>((resolve) => {
        const c = connect(port, '127.0.0.1');
        c.once('connect', () => resolve(true));
        c.once('error', () => resolve(false));
        c.once('close', () => c.destroy());
        c.once('connect', () => c.destroy());
      }),
    5000,
    'nginx listening',
  );
  const lb = await startLb(
    t,
    svc([addr(port)], {
      backend_tls: { ca: pki.ca.certFile, servername: 'backend.test' },
      pool: { min_idle: 1, max_idle: 1 },
    }),
  );
  const s = lb.service('web');
  const b = s.backends.get(addr(port));
  assert.ok(b);
  await waitFor(
    () => s.pool.idleCount === 1 && s.backendTls?.session(b, 'backend.test') !== undefined,
    3000,
    'a warm socket to nginx, and its session',
  );
  assert.equal(await httpGet(lb.address('web').port), 'backend.test .', 'a full handshake');
  await waitFor(() => s.pool.idleCount === 1, 3000, 'the refill');
  assert.equal(await httpGet(lb.address('web').port), 'backend.test r', 'the refill resumed');
  assert.equal(s.pool.counters.hits, 2);
});
