import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { type TestContext, test } from 'node:test';
import fc from 'fast-check';
import { monotonicClock } from '../src/clock.js';
import { parseHostPort } from '../src/config/address.js';
import type { HealthConfig } from '../src/config/health.js';
import { parseConfig } from '../src/config/schema.js';
import { dnsSource } from '../src/discovery/dns.js';
import { parseConsul, parseEntries } from '../src/discovery/entries.js';
import { DiscoveryError } from '../src/discovery/source.js';
import { srvSource } from '../src/discovery/srv.js';
import { holdDialogue } from '../src/health/dialogue.js';
import { MysqlLogin } from '../src/health/mysql-login.js';
import { PostgresLogin } from '../src/health/postgres-login.js';
import { encodeV1, encodeV2, parseProxyHeader } from '../src/proxy/proxy-protocol.js';
import { parseClientHello } from '../src/proxy/tls/client-hello.js';
import { discovering } from './helpers/discovery.js';
import { arrivals, chunkSizes, confined, mutated } from './helpers/fuzz.js';
import { captureHello } from './helpers/hello.js';
import { scriptedServer } from './helpers/servers.js';

/**
 * The sweep of issue 24: every parser of bytes from the network runs under a
 * fuzz test that asserts it never throws and never reads past what it was
 * given (helpers/fuzz.ts `confined`). The probe replies and agent lines are
 * in probe-replies.test.ts; here the PROXY header, the ClientHello, DNS and
 * SRV answers, and registry JSON (file / HTTP / Consul discovery).
 */

const ADDRS = {
  family: 'TCP4' as const,
  srcAddr: '203.0.113.7',
  srcPort: 51234,
  dstAddr: '192.0.2.1',
  dstPort: 443,
};
const ADDRS6 = {
  family: 'TCP6' as const,
  srcAddr: '2001:db8::7',
  srcPort: 51234,
  dstAddr: '2001:db8::1',
  dstPort: 443,
};

test('sweep: the PROXY header parser never throws nor reads past its input (random, prefixes, mutated v1/v2, re-fragmented)', () => {
  const valid = [
    encodeV1(ADDRS),
    encodeV1(ADDRS6),
    encodeV2(ADDRS),
    encodeV2(ADDRS6),
    encodeV2(null),
  ];
  const state = (b: Uint8Array) => confined(parseProxyHeader, b).state;
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
      state(b);
    }),
    { numRuns: 2000 },
  );
  for (const v of valid) {
    assert.equal(state(v), 'done');
    for (let i = 0; i < v.length; i++) assert.notEqual(state(v.subarray(0, i)), 'done');
    // Bytes after the header (the client's first) change nothing about the header.
    assert.deepEqual(
      parseProxyHeader(Buffer.concat([v, Buffer.from('GET / HTTP/1.1\r\n')])),
      parseProxyHeader(v),
    );
    fc.assert(
      fc.property(mutated(v, 6), (b) => {
        state(b);
      }),
      { numRuns: 1000 },
    );
    fc.assert(
      fc.property(chunkSizes(8), (sizes) => {
        // The reader re-parses everything received so far: the first answer that is not "more" is final.
        const seen = arrivals(v, sizes).map((b) => state(b));
        assert.equal(
          seen.find((s) => s !== 'more'),
          'done',
        );
      }),
      { numRuns: 200 },
    );
  }
});

test('sweep: the ClientHello parser never reads past its input (random, prefixes, mutated)', async () => {
  const hello = await captureHello({ servername: 'fuzz.example.com', ALPNProtocols: ['h2'] });
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 400 }), (b) => {
      confined(parseClientHello, b);
      confined(
        parseClientHello,
        Buffer.concat([Buffer.from([0x16, 3, 1, b.length >> 8, b.length & 255]), b]),
      );
    }),
    { numRuns: 1500 },
  );
  for (let i = 0; i <= hello.length; i += 7) confined(parseClientHello, hello.subarray(0, i));
  fc.assert(
    fc.property(mutated(hello, 6), (b) => {
      confined(parseClientHello, b);
    }),
    { numRuns: 1500 },
  );
});

/** The question section of a DNS query: from byte 12 to the end of QTYPE/QCLASS. */
function questionOf(q: Buffer): Buffer {
  let at = 12;
  while (at < q.length && q[at] !== 0) at += (q[at] as number) + 1;
  return q.subarray(12, Math.min(q.length, at + 5));
}

/**
 * A DNS server that answers every query with its id and question and then
 * whatever `answer()` gives (random, or a mutated real answer), so the
 * resolver (c-ares) and our mapping of its records are fed hostile replies.
 */
async function hostileDns(t: TestContext, answer: (q: Buffer) => Buffer): Promise<number> {
  const sock = createSocket('udp4');
  sock.on('error', () => {});
  sock.on('message', (q, from) => {
    if (q.length < 12) return;
    const body = answer(q);
    const head = Buffer.from([q[0] as number, q[1] as number, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0]);
    // Answer count from the body's first byte: anything from none to many claimed records.
    head[7] = body[0] ?? 0;
    sock.send(Buffer.concat([head, questionOf(q), body.subarray(1)]), from.port, from.address);
  });
  sock.bind(0, '127.0.0.1');
  await once(sock, 'listening');
  t.after(() => sock.close());
  return sock.address().port;
}

/** One A answer record for the question's name (a pointer to offset 12). */
function aRecord(ip: number[], ttl = 30): Buffer {
  return Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, ttl, 0, 4, ...ip]);
}
function srvRecord(port: number, target: number[]): Buffer {
  const rdata = Buffer.from([0, 10, 0, 5, port >> 8, port & 255, ...target]);
  return Buffer.concat([
    Buffer.from([0xc0, 12, 0, 33, 0, 1, 0, 0, 0, 30, rdata.length >> 8, rdata.length & 255]),
    rdata,
  ]);
}

test('sweep: DNS and SRV answers of any bytes settle a lookup with backends or a failure, never a throw; every backend has a port and a canonical address', async (t) => {
  let next: Buffer = Buffer.alloc(0);
  const port = await hostileDns(t, () => next);
  const cfg = (kind: 'dns' | 'srv') =>
    parseConfig(
      discovering({
        kind,
        name: kind === 'dns' ? 'web.test' : '_web._tcp.web.test',
        ...(kind === 'dns' ? { port: 8080 } : {}),
        resolver: `127.0.0.1:${port}`,
        timeout: '200ms',
      }),
      { allowEphemeralListen: true },
    ).services[0]?.discovery;
  const dns = dnsSource(cfg('dns') as NonNullable<ReturnType<typeof cfg>>);
  const srv = srvSource(cfg('srv') as NonNullable<ReturnType<typeof cfg>>);
  const validA = Buffer.concat([Buffer.from([2]), aRecord([10, 0, 0, 1]), aRecord([10, 0, 0, 2])]);
  const validSrv = Buffer.concat([
    Buffer.from([1]),
    srvRecord(9000, [2, 0x31, 0x30, 0]), // target "10" (a name that is no IP), then the root
  ]);
  const bodies = fc.oneof(
    fc.uint8Array({ maxLength: 120 }).map((b) => Buffer.from(b)),
    mutated(validA, 4),
    mutated(validSrv, 4),
    // Now and then an answer that is whole: the mapping of real records is reached too.
    fc.constantFrom(validA, validSrv),
  );
  const outcomes = { backends: 0, failed: 0 };
  await fc.assert(
    fc.asyncProperty(bodies, fc.boolean(), async (body, useSrv) => {
      next = body;
      const source = useSrv ? srv : dns;
      try {
        const a = await source.lookup(new AbortController().signal);
        if ((a.backends?.length ?? 0) > 0) outcomes.backends++;
        for (const b of a.backends ?? []) {
          assert.ok(b.port >= 0 && b.port <= 65535);
          const hp = parseHostPort(b.address, 0);
          assert.ok(!('error' in hp), `${b.address} parses back`);
          assert.equal(hp.address, b.address, 'canonical');
        }
      } catch (err) {
        outcomes.failed++;
        assert.ok(
          err instanceof DiscoveryError || (err as NodeJS.ErrnoException).code,
          String(err),
        );
      }
    }),
    { numRuns: 120 },
  );
  // The fuzz reached both ends: answers that gave backends, and answers refused.
  assert.ok(outcomes.backends > 0 && outcomes.failed > 0, JSON.stringify(outcomes));
  // An AAAA record of an IPv4-mapped address is that IPv4 backend (one key per endpoint).
  next = Buffer.concat([
    Buffer.from([1]),
    Buffer.from([
      0xc0,
      12,
      0,
      28,
      0,
      1,
      0,
      0,
      0,
      30,
      0,
      16,
      ...Array(10).fill(0),
      255,
      255,
      10,
      0,
      0,
      9,
    ]),
  ]);
  const mapped = await dns.lookup(new AbortController().signal);
  assert.deepEqual(
    mapped.backends?.map((b) => b.address),
    ['10.0.0.9:8080'],
  );
  // SRV: a record of port 0 is no endpoint; the other record (same target, an IP literal) is.
  const ipTarget = [2, 0x31, 0x30, 1, 0x30, 1, 0x30, 1, 0x31, 0]; // "10.0.0.1"
  next = Buffer.concat([Buffer.from([2]), srvRecord(0, ipTarget), srvRecord(9000, ipTarget)]);
  const portZero = await srv.lookup(new AbortController().signal);
  assert.deepEqual(
    portZero.backends?.map((b) => b.address),
    ['10.0.0.1:9000'],
  );
  next = validA;
  const ok = await dns.lookup(new AbortController().signal);
  assert.deepEqual(
    ok.backends?.map((b) => b.address),
    ['10.0.0.1:8080', '10.0.0.2:8080'],
  );
});

test('sweep: registry JSON of any shape gives backends or a DiscoveryError, never another throw (file/HTTP list and Consul)', () => {
  const tpl = {
    weight: 1,
    backup: false,
    maxConnections: 0,
    maxRate: 0,
    slowStartMs: 0,
  };
  const consulEntry = fc.record(
    {
      Node: fc.oneof(fc.record({ Address: fc.oneof(fc.string(), fc.anything()) }), fc.anything()),
      Service: fc.oneof(
        fc.record({
          Address: fc.oneof(fc.constantFrom('10.0.0.1', '::1', 'db.internal', ''), fc.anything()),
          Port: fc.oneof(fc.integer({ min: -5, max: 70000 }), fc.anything()),
          Weights: fc.oneof(fc.record({ Passing: fc.anything() }), fc.anything()),
        }),
        fc.anything(),
      ),
      Checks: fc.oneof(fc.array(fc.record({ Status: fc.anything() })), fc.anything()),
    },
    { requiredKeys: [] },
  );
  const entry = fc.oneof(
    fc.constantFrom('127.0.0.1:80', '[::ffff:10.0.0.1]:80', 'localhost:1', 'x', ''),
    fc.record({ address: fc.anything(), weight: fc.anything() }, { requiredKeys: [] }),
    fc.anything(),
  );
  const docs = fc.oneof(
    fc.jsonValue(),
    fc.anything(),
    fc.array(entry, { maxLength: 8 }),
    fc.record({ backends: fc.array(entry, { maxLength: 8 }) }),
    fc.array(consulEntry, { maxLength: 8 }),
  );
  fc.assert(
    fc.property(docs, (doc) => {
      for (const parse of [parseEntries, parseConsul]) {
        try {
          const out = parse(doc, tpl, 'registry');
          for (const b of out) assert.equal(typeof b.address, 'string');
        } catch (err) {
          assert.ok(err instanceof DiscoveryError, `${parse.name} threw ${String(err)}`);
        }
      }
    }),
    { numRuns: 3000 },
  );
});

test('sweep: the login probes (mysql, postgres with a user) settle on any reply bytes with a reason, never an exception, and their framing never reads past its input (fast-check, real sockets)', async (t) => {
  const login = (kind: 'mysql' | 'postgres') =>
    parseConfig(
      {
        services: {
          x: {
            listen: '127.0.0.1:0',
            backends: ['127.0.0.1:1'],
            health: { kind, user: 'u', password: 'p' },
          },
        },
      },
      { allowEphemeralListen: true },
    ).services[0]?.health.login as NonNullable<HealthConfig['login']>;
  const dialogue = (kind: 'mysql' | 'postgres') =>
    kind === 'mysql'
      ? new MysqlLogin(login('mysql'))
      : new PostgresLogin(login('postgres'), new Map());
  // Framing: pure, confined, any bytes.
  for (const kind of ['mysql', 'postgres'] as const) {
    const d = dialogue(kind);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        confined((x) => d.frame(x), b);
      }),
      { numRuns: 1000 },
    );
  }
  // Whole conversations: the server answers with random or mutated bytes, re-fragmented.
  let reply: Buffer = Buffer.alloc(0);
  const server = (kind: 'mysql' | 'postgres') =>
    scriptedServer(t, (s) => {
      s.resume();
      if (kind === 'mysql') s.end(reply);
      else s.once('data', () => s.end(reply));
    });
  const ports = { mysql: await server('mysql'), postgres: await server('postgres') };
  const greeting = Buffer.from(
    '4a0000000a31302e31312e360008000000414243444546474800fef7080200ff81150000000000000000000049' +
      '4a4b4c4d4e4f5051525300' +
      Buffer.from('mysql_native_password\0').toString('hex'),
    'hex',
  );
  const auth = Buffer.from('520000000c00000005aabbccdd', 'hex');
  const replies = fc.oneof(
    fc.uint8Array({ maxLength: 120 }).map((b) => Buffer.from(b)),
    mutated(greeting, 4),
    mutated(auth, 4),
  );
  await fc.assert(
    fc.asyncProperty(replies, fc.constantFrom('mysql', 'postgres'), async (b, kind) => {
      reply = b;
      const r = await holdDialogue(
        { host: '127.0.0.1', port: ports[kind as 'mysql' | 'postgres'] },
        dialogue(kind as 'mysql' | 'postgres'),
        1000,
        'ok',
        monotonicClock,
        null,
      );
      assert.equal(r.ok, false);
      assert.ok(r.detail.length > 0);
    }),
    { numRuns: 120 },
  );
});
