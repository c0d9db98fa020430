import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { type TestContext, test } from 'node:test';
import { createServer as createTlsServer, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import { createRegistry } from '../src/admin/metrics.js';
import { parseConfig } from '../src/config/schema.js';
import { LoadBalancer } from '../src/load-balancer.js';
import { encodeV2 } from '../src/proxy/proxy-protocol.js';
import { bigAlpn, captureHello } from './helpers/hello.js';
import { have, type Issuer, makeIssuer } from './helpers/issuer.js';
import { logLines } from './helpers/log-lines.js';
import { addr, ended, listen, startLb, waitFor } from './helpers/servers.js';

const run = promisify(execFile);

/** A TLS backend (the balancer passes TLS through): answers each connection with its name, and says which SNI and ALPN it saw. */
async function tlsBackend(
  t: TestContext,
  pki: Issuer,
  name: string,
  names: string[],
  httpOnly = false,
): Promise<number> {
  const { cert, key } = pki.server(names, `backend-${name}`);
  const { readFileSync } = await import('node:fs');
  const server = createTlsServer(
    { cert: readFileSync(cert), key: readFileSync(key), ALPNProtocols: ['h2', 'http/1.1'] },
    (s) => {
      s.on('error', () => {});
      s.on('data', (d) => {
        if (d.toString().startsWith('GET '))
          s.end(
            `HTTP/1.1 200 OK\r\nContent-Length: ${name.length}\r\nConnection: close\r\n\r\n${name}`,
          );
      });
      if (!httpOnly)
        s.write(
          `${name} sni=${(s as TLSSocket & { servername?: string }).servername} alpn=${s.alpnProtocol}\n`,
        );
    },
  );
  return listen(t, server as never);
}

/** Connects with TLS through the balancer; resolves with the backend's first line. */
async function hello(
  port: number,
  pki: Issuer,
  servername: string | undefined,
  alpn?: string[],
): Promise<string> {
  const c = tlsConnect({
    port,
    host: '127.0.0.1',
    ...(servername ? { servername } : {}),
    ca: pki.ca,
    checkServerIdentity: () => undefined,
    ...(alpn ? { ALPNProtocols: alpn } : {}),
  });
  c.on('error', () => {});
  const [line] = (await once(c, 'data')) as [Buffer];
  c.destroy();
  return line.toString().trim();
}

/** Resolves with how the balancer closed a raw client (it must close). */
async function closedBy(port: number, send: (c: Socket) => void): Promise<void> {
  const c = connect({ port, host: '127.0.0.1' });
  c.on('error', () => {});
  await once(c, 'connect');
  send(c);
  await ended(c);
  c.destroy();
}

function sniServices(
  backends: Record<string, number>,
  routes: Record<string, Record<string, unknown>>,
  extra: Record<string, unknown> = {},
) {
  const services: Record<string, unknown> = {};
  for (const [name, r] of Object.entries(routes))
    services[name] = {
      listen: '127.0.0.1:0',
      backends: [addr(backends[name] as number)],
      connect_timeout: '500ms',
      health: { kind: 'none' },
      pool: { min_idle: 0 },
      ...extra,
      ...r,
    };
  return { log: { level: 'silent' }, services };
}

function refusals(lb: LoadBalancer) {
  return [...lb.listenerRefusals.values()][0];
}

test('sni: services on one address are chosen by name (exact, wildcard, default), bytes pass through untouched', async (t) => {
  const pki = makeIssuer(t);
  const ports = {
    api: await tlsBackend(t, pki, 'api', ['api.example.com']),
    wild: await tlsBackend(t, pki, 'wild', ['*.example.com']),
    other: await tlsBackend(t, pki, 'other', ['other']),
  };
  const lb = await startLb(
    t,
    sniServices(ports, {
      api: { sni: ['api.example.com'] },
      wild: { sni: ['*.example.com'] },
      other: { sni: ['*'] },
    }),
  );
  const port = lb.address('api').port;
  assert.equal(lb.address('wild').port, port, 'one listener for the three');
  assert.equal(await hello(port, pki, 'api.example.com'), 'api sni=api.example.com alpn=false');
  // Matched case-insensitively; the backend sees the name as sent, since no byte is changed.
  assert.equal(await hello(port, pki, 'API.EXAMPLE.COM'), 'api sni=API.EXAMPLE.COM alpn=false');
  assert.equal(await hello(port, pki, 'www.example.com'), 'wild sni=www.example.com alpn=false');
  assert.equal(await hello(port, pki, 'a.b.example.com'), 'other sni=a.b.example.com alpn=false');
  assert.equal(await hello(port, pki, undefined), 'other sni=false alpn=false');
  assert.deepEqual(lb.service('api').stats.routes, { 'api.example.com': 2 });
  assert.deepEqual(lb.service('other').stats.routes, { '*': 2 });
});

test('sni: ALPN picks between services under one name; an unmatched name with no default is refused and counted', async (t) => {
  const pki = makeIssuer(t);
  const ports = {
    grpc: await tlsBackend(t, pki, 'grpc', ['a.test']),
    web: await tlsBackend(t, pki, 'web', ['a.test']),
  };
  const lb = await startLb(
    t,
    sniServices(ports, { grpc: { sni: ['a.test'], alpn: ['h2'] }, web: { sni: ['a.test'] } }),
  );
  const port = lb.address('web').port;
  assert.equal(await hello(port, pki, 'a.test', ['h2', 'http/1.1']), 'grpc sni=a.test alpn=h2');
  assert.equal(await hello(port, pki, 'a.test', ['http/1.1']), 'web sni=a.test alpn=http/1.1');
  const c = tlsConnect({ port, host: '127.0.0.1', servername: 'b.test', ca: pki.ca });
  const [err] = (await once(c, 'error')) as [NodeJS.ErrnoException];
  assert.equal(err.code, 'ECONNRESET');
  assert.equal(refusals(lb)?.['refused-sni'], 1);
});

test('sni: a hello split across two writes, and one over 4 KiB, are read whole and replayed unchanged', async (t) => {
  const pki = makeIssuer(t);
  const ports = {
    a: await tlsBackend(t, pki, 'a', ['a.test']),
    b: await tlsBackend(t, pki, 'b', ['b.test']),
  };
  const lb = await startLb(
    t,
    sniServices(ports, { a: { sni: ['a.test'] }, b: { sni: ['b.test'] } }),
  );
  const port = lb.address('a').port;
  // A real client whose first write is cut in two, a pause between.
  const raw = connect({ port, host: '127.0.0.1' });
  raw.setNoDelay(true);
  await once(raw, 'connect');
  const realWrite = raw.write.bind(raw);
  let first = true;
  (raw as { write: unknown }).write = (chunk: Buffer, ...rest: unknown[]) => {
    if (!first) return realWrite(chunk, ...(rest as []));
    first = false;
    realWrite(chunk.subarray(0, 7));
    setTimeout(() => realWrite(chunk.subarray(7), ...(rest as [])), 30);
    return true;
  };
  const c = tlsConnect({
    socket: raw,
    servername: 'b.test',
    ca: pki.ca,
    checkServerIdentity: () => undefined,
  });
  const [line] = (await once(c, 'data')) as [Buffer];
  assert.match(line.toString(), /^b sni=b\.test/);
  c.destroy();
  // Over 4 KiB: many ALPN entries (as a post-quantum key share would make it).
  const big = bigAlpn(5000);
  assert.ok((await captureHello({ servername: 'a.test', ALPNProtocols: big })).length > 4096);
  assert.equal(await hello(port, pki, 'a.test', big), 'a sni=a.test alpn=http/1.1');
});

test('sni: not TLS, a late hello, and a malformed one are closed and counted as bad-hello', async (t) => {
  const pki = makeIssuer(t);
  const ports = { a: await tlsBackend(t, pki, 'a', ['a.test']) };
  const lb = await startLb(t, sniServices(ports, { a: { sni: ['*'], hello_timeout: '200ms' } }));
  const port = lb.address('a').port;
  await closedBy(port, (c) => c.write('GET / HTTP/1.1\r\nHost: a.test\r\n\r\n'));
  assert.equal(refusals(lb)?.['bad-hello'], 1);
  // Half a hello, then nothing: refused at hello_timeout.
  const half = (await captureHello({ servername: 'a.test' })).subarray(0, 40);
  const started = Date.now();
  await closedBy(port, (c) => c.write(half));
  assert.ok(Date.now() - started >= 150, 'closed at the deadline, not before');
  assert.equal(refusals(lb)?.['bad-hello'], 2);
  await closedBy(port, (c) => c.write(Buffer.from([0x16, 3, 1, 0, 4, 2, 0, 0, 0])));
  assert.equal(refusals(lb)?.['bad-hello'], 3);
  assert.equal(lb.service('a').counters.accepted, 0, 'no service took any of them');
});

test('sni: behind a PROXY v2 header, routing and the client address both hold; an untrusted sender is refused', async (t) => {
  const pki = makeIssuer(t);
  const ports = {
    a: await tlsBackend(t, pki, 'a', ['a.test']),
    b: await tlsBackend(t, pki, 'b', ['b.test']),
  };
  const lb = await startLb(
    t,
    sniServices(
      ports,
      { a: { sni: ['a.test'] }, b: { sni: ['b.test'], max_connections_per_source: 1 } },
      { accept_proxy: true, trusted_proxies: ['127.0.0.1'] },
    ),
  );
  const port = lb.address('a').port;
  const proxied = async (src: string): Promise<TLSSocket> => {
    const raw = connect({ port, host: '127.0.0.1' });
    await once(raw, 'connect');
    raw.write(
      encodeV2({
        family: 'IPv4',
        srcAddr: src,
        srcPort: 5555,
        dstAddr: '127.0.0.1',
        dstPort: port,
      } as never),
    );
    const c = tlsConnect({
      socket: raw,
      servername: 'b.test',
      ca: pki.ca,
      checkServerIdentity: () => undefined,
    });
    c.on('error', () => {});
    const [line] = (await once(c, 'data')) as [Buffer];
    assert.match(line.toString(), /^b sni=b\.test/);
    return c;
  };
  const one = await proxied('203.0.113.7');
  // The per-source limit keys on the address the header gave: a second from it is refused, another passes.
  const second = connect({ port, host: '127.0.0.1' });
  second.on('error', () => {});
  await once(second, 'connect');
  second.write(
    encodeV2({
      family: 'IPv4',
      srcAddr: '203.0.113.7',
      srcPort: 5556,
      dstAddr: '127.0.0.1',
      dstPort: port,
    } as never),
  );
  second.write(await captureHello({ servername: 'b.test' }));
  await ended(second);
  assert.equal(lb.service('b').counters.refusedSourceConnections, 1);
  const other = await proxied('203.0.113.8');
  one.destroy();
  other.destroy();
  // No header at all: the hello bytes are no PROXY header.
  await closedBy(port, async (c) => c.write(await captureHello({ servername: 'a.test' })));
  assert.equal(refusals(lb)?.['refused-proxy'], 1);
});

test('sni: reload lets services join and leave a shared listener without rebinding it', async (t) => {
  const pki = makeIssuer(t);
  const ports = {
    a: await tlsBackend(t, pki, 'a', ['a.test']),
    b: await tlsBackend(t, pki, 'b', ['b.test']),
  };
  const one = sniServices(ports, { a: { sni: ['a.test'] } });
  const lb = await startLb(t, one);
  const port = lb.address('a').port;
  const open = tlsConnect({
    port,
    host: '127.0.0.1',
    servername: 'a.test',
    ca: pki.ca,
    checkServerIdentity: () => undefined,
  });
  open.on('error', () => {});
  await once(open, 'data');
  const both = sniServices(ports, { a: { sni: ['a.test'] }, b: { sni: ['b.test'] } });
  await lb.reload(parseConfig(both, { allowEphemeralListen: true }));
  assert.equal(lb.address('b').port, port, 'b joined the bound listener');
  assert.equal(await hello(port, pki, 'b.test'), 'b sni=b.test alpn=false');
  const onlyB = sniServices(ports, { b: { sni: ['b.test'] } });
  await lb.reload(parseConfig(onlyB, { allowEphemeralListen: true }));
  assert.equal(await hello(port, pki, 'b.test'), 'b sni=b.test alpn=false');
  const refused = tlsConnect({ port, host: '127.0.0.1', servername: 'a.test', ca: pki.ca });
  await once(refused, 'error');
  assert.equal(refusals(lb)?.['refused-sni'], 1);
  // The session a opened before it left still carries bytes.
  open.write('GET / HTTP/1.1\r\n\r\n');
  const [reply] = (await once(open, 'data')) as [Buffer];
  assert.match(reply.toString(), /200 OK/);
  open.destroy();
});

test('sni: real clients (openssl s_client -servername, curl --resolve) reach the service their name routes to', async (t) => {
  for (const cmd of ['openssl', 'curl']) {
    if (!have(cmd)) {
      assert.notEqual(process.env.CI, 'true', `${cmd} is installed by .ci/run`);
      t.skip(`${cmd} not installed`);
      return;
    }
  }
  const pki = makeIssuer(t);
  const ports = {
    a: await tlsBackend(t, pki, 'a', ['a.test']),
    b: await tlsBackend(t, pki, 'b', ['b.test'], true),
  };
  const lb = await startLb(
    t,
    sniServices(ports, { a: { sni: ['a.test'] }, b: { sni: ['b.test'] } }),
  );
  const port = lb.address('a').port;
  const curl = await run('curl', [
    '-sS',
    '--http1.1',
    '--cacert',
    pki.caFile,
    '--resolve',
    `b.test:${port}:127.0.0.1`,
    `https://b.test:${port}/`,
  ]);
  assert.equal(curl.stdout, 'b');
  const s = await run('sh', [
    '-c',
    `echo | openssl s_client -connect 127.0.0.1:${port} -servername a.test -CAfile ${pki.caFile} 2>&1`,
  ]);
  assert.match(s.stdout, /Verify return code: 0 \(ok\)/);
  assert.match(s.stdout, /subject=CN ?= ?a\.test/);
  await waitFor(() => lb.service('a').activeSessions === 0 && lb.service('b').activeSessions === 0);
});

test('sni: the access log carries the server name; metrics count per route and per refusal cause, not per name', async (t) => {
  const pki = makeIssuer(t);
  const ports = { a: await tlsBackend(t, pki, 'a', ['a.test']) };
  const { lines, logger: sinkLogger } = logLines();
  const cfg = sniServices(ports, { a: { sni: ['*.test'] } });
  const lb = new LoadBalancer(
    parseConfig({ ...cfg, log: { access: true } }, { allowEphemeralListen: true }),
    { logger: sinkLogger },
  );
  await lb.start();
  t.after(() => lb.close(0));
  const port = lb.address('a').port;
  for (const name of ['one.test', 'two.test', 'three.test']) await hello(port, pki, name);
  await closedBy(port, (c) => c.write('SSH-2.0-OpenSSH\r\n'));
  const other = tlsConnect({ port, host: '127.0.0.1', servername: 'x.example', ca: pki.ca });
  await once(other, 'error');
  await waitFor(() => lines.filter((l) => l.log === 'access').length === 5, 3000, 'access lines');
  const access = lines.filter((l) => l.log === 'access');
  const names = access.filter((l) => l.service === 'a').map((l) => l.sni);
  assert.deepEqual(names.sort(), ['one.test', 'three.test', 'two.test']);
  assert.deepEqual(
    access
      .filter((l) => l.service === undefined)
      .map((l) => [l.cause, l.sni])
      .sort(),
    [
      ['bad-hello', null],
      ['refused-sni', 'x.example'],
    ],
  );
  const text = await createRegistry(lb).metrics();
  assert.match(text, /blitz_lb_sni_routed_total\{service="a",route="\*\.test"\} 3/);
  assert.doesNotMatch(text, /one\.test/);
  assert.match(
    text,
    /blitz_lb_listener_refused_total\{listen="127\.0\.0\.1:0",reason="bad-hello"\} 1/,
  );
  assert.match(
    text,
    /blitz_lb_listener_refused_total\{listen="127\.0\.0\.1:0",reason="refused-sni"\} 1/,
  );
});

test('sni: allow/deny judge a routed client before any byte reaches a backend', async (t) => {
  const pki = makeIssuer(t);
  const ports = {
    open: await tlsBackend(t, pki, 'open', ['open.example.com']),
    closed: await tlsBackend(t, pki, 'closed', ['closed.example.com']),
  };
  const lb = await startLb(
    t,
    sniServices(ports, {
      open: { sni: ['open.example.com'] },
      closed: { sni: ['closed.example.com'], deny: ['127.0.0.0/8'] },
    }),
  );
  const port = lb.address('open').port;
  assert.equal(await hello(port, pki, 'open.example.com'), 'open sni=open.example.com alpn=false');
  const c = tlsConnect({ port, host: '127.0.0.1', servername: 'closed.example.com', ca: pki.ca });
  const err = await new Promise<unknown>((resolve) => {
    c.once('error', resolve);
    c.once('secureConnect', () => resolve(null));
  });
  assert.ok(err, 'the denied client gets no handshake');
  c.destroy();
  await waitFor(
    () => lb.service('closed').counters.refusedDenied === 1,
    3000,
    'the refusal counted on the routed service',
  );
  assert.equal(lb.service('closed').activeSessions, 0);
});
