import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { waitForPort } from '../bench/lib/net.js';
import { parseToml } from '../src/config/load.js';
import { parseConfig } from '../src/config/schema.js';
import { LbError } from '../src/errors.js';
import {
  encodeV1,
  encodeV2,
  type ProxyAddresses,
  parseProxyHeader,
} from '../src/proxy/proxy-protocol.js';
import { runCli, tempConfig } from './helpers/cli.js';
import {
  addr,
  ended,
  openClient,
  readAll,
  refusedPort,
  scriptedServer,
  startLb,
  svc,
  waitFor,
} from './helpers/servers.js';

/** A backend that reads a PROXY header and answers with the client address it names. */
async function proxyAwareBackend(t: Parameters<typeof startLb>[0]) {
  return scriptedServer(t, (s) => {
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('end', () => {
      const buf = Buffer.concat(chunks);
      const r = parseProxyHeader(buf);
      if (r.state !== 'done') {
        s.end(`ERROR ${r.state === 'error' ? r.reason : 'incomplete'}`);
        return;
      }
      const a = r.header.addresses;
      s.end(
        `v${r.header.version} ${a ? `${a.srcAddr}:${a.srcPort}` : 'LOCAL'} rest=${buf.subarray(r.consumed).toString()}`,
      );
    });
  });
}

function clientFrom(port: number, localAddress: string): Promise<Socket> {
  const c = connect({ port, host: '127.0.0.1', localAddress, allowHalfOpen: true });
  c.on('error', () => {});
  return once(c, 'connect').then(() => c);
}

for (const version of ['v1', 'v2'] as const) {
  test(`send_proxy ${version}: the backend learns the client address, also through a warm pooled socket`, async (t) => {
    const be = await proxyAwareBackend(t);
    const lb = await startLb(
      t,
      svc([addr(be)], { send_proxy: version, pool: { min_idle: 1, max_idle: 1 } }),
    );
    const s = lb.service('web');
    await waitFor(() => s.pool.idleCount === 1, 3000, 'pool');
    for (const src of ['127.0.0.2', '127.0.0.3']) {
      const c = await clientFrom(lb.address('web').port, src);
      const from = c.localPort;
      c.end('hello');
      const reply = (await readAll(c)).toString();
      assert.equal(reply, `${version} ${src}:${from} rest=hello`);
      c.destroy();
    }
    assert.ok(
      s.pool.counters.hits >= 1,
      'a pooled socket carried the header of the client that took it',
    );
  });
}

test('send_proxy against real nginx (listen … proxy_protocol): $proxy_protocol_addr is the client', async (t) => {
  const nginx = '/usr/sbin/nginx';
  const { existsSync } = await import('node:fs');
  if (!existsSync(nginx)) {
    assert.notEqual(process.env.CI, 'true', 'nginx is installed by .ci/run');
    t.skip('nginx not installed');
    return;
  }
  const port = await refusedPort();
  const dir = mkdtempSync(join(tmpdir(), 'blitz-nginx-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    join(dir, 'nginx.conf'),
    `daemon off; master_process off; worker_processes 1; error_log ${dir}/error.log; pid ${dir}/nginx.pid;
events { worker_connections 64; }
http { access_log off; client_body_temp_path ${dir}/cb; proxy_temp_path ${dir}/p; fastcgi_temp_path ${dir}/f; uwsgi_temp_path ${dir}/u; scgi_temp_path ${dir}/s;
  server { listen 127.0.0.1:${port} proxy_protocol; location / { return 200 "$proxy_protocol_addr:$proxy_protocol_port"; } } }`,
  );
  const proc = spawn(nginx, ['-c', join(dir, 'nginx.conf'), '-p', dir], { stdio: 'ignore' });
  t.after(() => proc.kill('SIGKILL'));
  await waitForPort(port);
  for (const version of ['v1', 'v2']) {
    const lb = await startLb(t, svc([addr(port)], { send_proxy: version }));
    const c = await clientFrom(lb.address('web').port, '127.0.0.5');
    const from = c.localPort;
    c.end('GET / HTTP/1.0\r\nHost: x\r\n\r\n');
    const body = (await readAll(c)).toString().split('\r\n\r\n')[1];
    assert.equal(body, `127.0.0.5:${from}`, `nginx saw the client through PROXY ${version}`);
    c.destroy();
  }
});

async function acceptLb(t: Parameters<typeof startLb>[0], trusted: string[]) {
  const be = await proxyAwareBackend(t);
  // The balancer passes the PROXY-in address on with send_proxy, so the backend shows what it learnt.
  return startLb(
    t,
    svc([addr(be)], {
      accept_proxy: true,
      trusted_proxies: trusted,
      send_proxy: 'v1',
      balance: 'ip-hash',
    }),
  );
}

const fake: ProxyAddresses = {
  family: 'TCP4',
  srcAddr: '203.0.113.7',
  srcPort: 40000,
  dstAddr: '198.51.100.1',
  dstPort: 443,
};

for (const [version, encode] of [
  ['v1', encodeV1],
  ['v2', encodeV2],
] as const) {
  test(`accept_proxy ${version}: the header's address becomes the client address; trailing bytes are kept`, async (t) => {
    const lb = await acceptLb(t, ['127.0.0.0/8']);
    const c = await openClient(lb.address('web').port);
    const header = encode(fake);
    // Split across writes: a header may arrive in pieces.
    c.write(header.subarray(0, 5));
    await new Promise((r) => setTimeout(r, 20));
    c.end(Buffer.concat([header.subarray(5), Buffer.from('payload')]));
    assert.equal((await readAll(c)).toString(), 'v1 203.0.113.7:40000 rest=payload');
    c.destroy();
  });
}

test('accept_proxy: an untrusted source, a malformed header, a partial one and none within 3 s are refused', async (t) => {
  const lb = await acceptLb(t, ['127.0.0.2/32']);
  const port = lb.address('web').port;
  const s = lb.service('web');
  const refusedNow = async (c: Socket): Promise<void> => {
    c.resume();
    await ended(c);
    c.destroy();
  };
  await refusedNow(await clientFrom(port, '127.0.0.9'));
  assert.equal(s.counters.refusedProxy, 1, 'untrusted source');
  const bad = await clientFrom(port, '127.0.0.2');
  bad.write('GET / HTTP/1.1\r\n\r\n');
  await refusedNow(bad);
  const partial = await clientFrom(port, '127.0.0.2');
  partial.end('PROXY TCP4 1.2.3.4');
  await refusedNow(partial);
  const silent = await clientFrom(port, '127.0.0.2');
  const t0 = Date.now();
  await refusedNow(silent);
  assert.ok(Date.now() - t0 >= 2900, 'the 3 s header deadline');
  assert.equal(s.counters.refusedProxy, 4);
  assert.equal(s.backends.all[0]?.sessionsTotal, 0, 'no refused client reached a backend');
});

test('PROXY header parser: random bytes never throw; valid headers round-trip (fast-check)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      const r = parseProxyHeader(Buffer.from(bytes));
      assert.ok(['more', 'done', 'error'].includes(r.state));
    }),
    { numRuns: 5000 },
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 120 }), (bytes) => {
      // Valid signatures followed by noise: must never throw either.
      for (const prefix of [
        Buffer.from('PROXY '),
        Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]),
      ]) {
        const r = parseProxyHeader(Buffer.concat([prefix, Buffer.from(bytes)]));
        assert.ok(['more', 'done', 'error'].includes(r.state));
      }
    }),
    { numRuns: 5000 },
  );
  const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((x) => x.join('.'));
  fc.assert(
    fc.property(ipv4, ipv4, fc.nat(65535), fc.nat(65535), fc.boolean(), (src, dst, sp, dp, v2) => {
      const a: ProxyAddresses = {
        family: 'TCP4',
        srcAddr: src,
        srcPort: sp,
        dstAddr: dst,
        dstPort: dp,
      };
      const r = parseProxyHeader((v2 ? encodeV2 : encodeV1)(a));
      assert.equal(r.state, 'done');
      assert.deepEqual(r.state === 'done' ? r.header.addresses : null, a);
    }),
    { numRuns: 2000 },
  );
});

test('per-source limits: over max_connections_per_source or max_rate_per_source a source is refused; others are not', async (t) => {
  const be = await scriptedServer(t, (s) => {
    s.resume();
    s.on('end', () => s.end());
  });
  const lb = await startLb(
    t,
    svc([addr(be)], { max_connections_per_source: 2, max_rate_per_source: 5 }),
  );
  const port = lb.address('web').port;
  const s = lb.service('web');
  const isRefused = (c: Socket): Promise<boolean> =>
    new Promise((r) => {
      c.resume();
      c.once('end', () => r(true));
      setTimeout(() => r(false), 300);
    });
  const a1 = await clientFrom(port, '127.0.0.2');
  const a2 = await clientFrom(port, '127.0.0.2');
  await waitFor(() => s.activeSessions === 2, 2000, 'two sessions');
  const a3 = await clientFrom(port, '127.0.0.2');
  assert.equal(await isRefused(a3), true, 'third connection from the same source');
  assert.equal(s.counters.refusedSourceConnections, 1);
  const b1 = await clientFrom(port, '127.0.0.3');
  assert.equal(await isRefused(b1), false, 'another source is unaffected');
  for (const c of [a1, a2, a3, b1]) c.destroy();
  await waitFor(() => s.activeSessions === 0, 2000, 'sessions end');
  // Rate, on its own service: 5 a second with a burst of 5; the 6th and 7th at once are refused.
  const rl = await startLb(t, svc([addr(be)], { max_rate_per_source: 5 }));
  const rport = rl.address('web').port;
  const rs = rl.service('web');
  for (let i = 0; i < 7; i++) {
    const c = await clientFrom(rport, '127.0.0.4');
    c.destroy();
  }
  await waitFor(() => rs.counters.accepted === 7, 2000, 'seven accepted');
  assert.equal(rs.counters.refusedSourceRate, 2);
  const other = await clientFrom(rport, '127.0.0.5');
  assert.equal(await isRefused(other), false, 'another source is unaffected by the rate limit');
  other.destroy();
});

const VALID = `[process]
shutdown_timeout = "5s"
[log]
level = "info"
[services.web]
listen = "127.0.0.1:8080"
balance = "least-connections"
backends = ["127.0.0.1:9001", { address = "127.0.0.1:9002", weight = 2 }]
connect_timeout = "1s"
[services.web.health]
kind = "http"
path = "/health"
[services.web.pool]
min_idle = 1
`;

test('config fuzz: random mutations of a valid file are accepted or rejected with LB_ERR_CONFIG, never a crash', () => {
  const mutate = fc.tuple(
    fc.nat(VALID.length),
    fc.nat(20),
    fc.string({ maxLength: 8 }),
    fc.constantFrom('delete', 'insert', 'replace', 'dupline'),
  );
  fc.assert(
    fc.property(fc.array(mutate, { minLength: 1, maxLength: 4 }), (ops) => {
      let text = VALID;
      for (const [at, len, str, op] of ops) {
        const i = at % (text.length + 1);
        if (op === 'delete') text = text.slice(0, i) + text.slice(i + len);
        else if (op === 'insert') text = text.slice(0, i) + str + text.slice(i);
        else if (op === 'replace') text = text.slice(0, i) + str + text.slice(i + str.length);
        else {
          const lines = text.split('\n');
          const k = at % lines.length;
          lines.splice(k, 0, lines[k] ?? '');
          text = lines.join('\n');
        }
      }
      try {
        parseConfig(parseToml(text, 'fuzz.toml'), { source: 'fuzz.toml' });
      } catch (err) {
        assert.ok(
          err instanceof LbError && err.code === 'LB_ERR_CONFIG',
          `unexpected ${(err as Error).stack}`,
        );
        assert.match((err as Error).message, /^fuzz\.toml/);
      }
    }),
    { numRuns: 3000 },
  );
});

test('config fuzz through the real CLI: check exits 0 or 2 with a message, never a stack trace', (t) => {
  const samples = fc.sample(
    fc.tuple(fc.nat(VALID.length), fc.string({ minLength: 1, maxLength: 6 })),
    { numRuns: 12, seed: 7 },
  );
  for (const [at, str] of samples) {
    const text = VALID.slice(0, at) + str + VALID.slice(at + 1);
    const r = runCli(['check', '--config', tempConfig(t, text)]);
    assert.ok(r.status === 0 || r.status === 2, `exit ${r.status}: ${r.stderr}`);
    if (r.status === 2) assert.ok(r.stderr.length > 0);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  }
});
