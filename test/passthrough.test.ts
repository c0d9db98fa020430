import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createH2Server, connect as h2connect } from 'node:http2';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { createServer as createTlsServer, connect as tlsConnect } from 'node:tls';
import { runBalancer, twoWorkers } from './helpers/cluster.js';
import { addr, listen, startLb, svc } from './helpers/servers.js';

type Mode = 'one process' | 'workers = 2';
const MODES: Mode[] = ['one process', 'workers = 2'];

/** A balancer in front of one backend, in this process or as the CLI with two workers. */
async function front(
  t: TestContext,
  mode: Mode,
  backend: string,
): Promise<{ port: number; accepted: () => Promise<number> }> {
  if (mode === 'one process') {
    const lb = await startLb(t, svc([backend], { pool: { min_idle: 1 } }));
    return {
      port: lb.address('web').port,
      accepted: async () => lb.service('web').counters.accepted,
    };
  }
  const lb = await runBalancer(t, twoWorkers([backend], ['pool = { min_idle = 1 }']));
  return {
    port: lb.port,
    accepted: async () =>
      ((await lb.admin('/api/services')).body as { services: { counters: { accepted: number } }[] })
        .services[0]?.counters.accepted ?? -1,
  };
}

for (const mode of MODES) {
  test(`pass-through (${mode}): HTTP/2 with prior knowledge, 200 concurrent streams on one connection`, async (t) => {
    const server = createH2Server();
    server.on('stream', (stream, headers) => {
      stream.respond({ ':status': 200 });
      stream.end(`stream for ${headers[':path']}`);
    });
    const port = await listen(t, server as unknown as Server);
    const lb = await front(t, mode, addr(port));
    const client = h2connect(`http://127.0.0.1:${lb.port}`);
    // Teardown closes the balancer first, which resets the sessions it cuts.
    client.on('error', () => {});
    t.after(() => client.close());
    const bodies = await Promise.all(
      Array.from({ length: 200 }, (_, i) => {
        const req = client.request({ ':path': `/item/${i}` });
        req.setEncoding('utf8');
        let body = '';
        req.on('data', (d: string) => {
          body += d;
        });
        return once(req, 'end').then(() => body);
      }),
    );
    bodies.forEach((b, i) => {
      assert.equal(b, `stream for /item/${i}`);
    });
    assert.equal(await lb.accepted(), 1, 'one TCP connection carried every stream');
  });

  test(`pass-through (${mode}): TLS end to end; the client sees the backend certificate, the balancer never touches the bytes`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'blitz-tls-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=backend.test',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    const cert = readFileSync(join(dir, 'cert.pem'));
    const server = createTlsServer({ key: readFileSync(join(dir, 'key.pem')), cert }, (s) => {
      s.on('error', () => {});
      s.on('data', (d: Buffer) => s.write(`echo:${d.toString()}`));
    });
    const port = await listen(t, server as unknown as Server);
    const lb = await front(t, mode, addr(port));
    const c = tlsConnect({
      host: '127.0.0.1',
      port: lb.port,
      ca: cert,
      servername: 'backend.test',
    });
    c.on('error', () => {});
    await once(c, 'secureConnect');
    assert.equal(c.authorized, true, 'the chain verifies against the backend certificate');
    assert.equal(c.getPeerCertificate().subject.CN, 'backend.test');
    c.write('hello over tls');
    const [reply] = (await once(c, 'data')) as [Buffer];
    assert.equal(reply.toString(), 'echo:hello over tls');
    c.destroy();
  });
}
