import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseConfig } from '../src/config/schema.js';
import { MAX_HELLO_BYTES, parseClientHello } from '../src/proxy/tls/client-hello.js';
import { SniRoutes } from '../src/proxy/tls/sni-routes.js';
import { bigAlpn, captureHello, refragment } from './helpers/hello.js';

test('client hello: a real hello gives its server name (lower case, trailing dot dropped) and ALPN list', async () => {
  const hello = await captureHello({
    servername: 'API.Example.com.',
    ALPNProtocols: ['h2', 'http/1.1'],
  });
  const r = parseClientHello(hello);
  assert.deepEqual(r, { state: 'done', serverName: 'api.example.com', alpn: ['h2', 'http/1.1'] });
  const none = parseClientHello(await captureHello({}));
  assert.deepEqual(none, { state: 'done', serverName: null, alpn: null });
});

test('client hello: every prefix asks for more, whatever the split, and the whole answers the same', async () => {
  const hello = await captureHello({ servername: 'a.test', ALPNProtocols: ['h2'] });
  for (let i = 0; i < hello.length; i++)
    assert.equal(parseClientHello(hello.subarray(0, i)).state, 'more', `prefix of ${i} bytes`);
  const sizes = [[1], [3], [4, 1, 200], [50, 50, 50, 50, 50, 50, 50]];
  for (const s of sizes) {
    const r = parseClientHello(refragment(hello, s));
    assert.deepEqual(r, { state: 'done', serverName: 'a.test', alpn: ['h2'] }, `records of ${s}`);
  }
});

test('client hello: over 4 KiB parses; over 16 KiB is refused', async () => {
  const big = await captureHello({ servername: 'big.test', ALPNProtocols: bigAlpn(5000) });
  assert.ok(big.length > 4096, `hello of ${big.length} bytes`);
  const r = parseClientHello(big);
  assert.equal(r.state, 'done');
  assert.equal(r.state === 'done' && r.serverName, 'big.test');
  // A handshake longer than the cap is refused as soon as its header says so, not after 16 KiB arrive.
  const huge = Buffer.from([0x16, 3, 1, 0, 8, 1, 0x01, 0x00, 0x00, 0, 0, 0, 0]);
  const h = parseClientHello(huge);
  assert.equal(h.state, 'error');
  assert.match(h.state === 'error' ? h.reason : '', /over 16384/);
  // Records that keep coming past the cap without completing the hello.
  const many = refragment(big, Array(4000).fill(1));
  assert.ok(many.length > MAX_HELLO_BYTES);
  assert.equal(parseClientHello(many).state, 'error');
});

test('client hello: non-TLS and malformed input fail at once, with a reason', () => {
  const cases: [string, Buffer][] = [
    ['HTTP', Buffer.from('GET / HTTP/1.1\r\n')],
    ['SSLv2', Buffer.from([0x80, 0x2e, 0x01, 0x03, 0x01])],
    ['an alert record', Buffer.from([0x15, 3, 1, 0, 2, 2, 40])],
    ['a ServerHello', Buffer.from([0x16, 3, 3, 0, 4, 2, 0, 0, 0])],
    ['an empty record', Buffer.from([0x16, 3, 1, 0, 0])],
    ['record version 2', Buffer.from([0x16, 2, 0, 0, 4])],
  ];
  for (const [what, b] of cases) {
    const r = parseClientHello(b);
    assert.equal(r.state, 'error', what);
  }
});

test('client hello: no input makes the parser throw (fast-check: random bytes, mutated and cut real hellos)', async () => {
  const hello = await captureHello({
    servername: 'fuzz.example.com',
    ALPNProtocols: ['h2', 'http/1.1'],
  });
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
      const b = Buffer.from(bytes);
      parseClientHello(b);
      // With a handshake record header in front, the parser gets past the first byte.
      parseClientHello(
        Buffer.concat([Buffer.from([0x16, 3, 1, b.length >> 8, b.length & 0xff]), b]),
      );
    }),
    { numRuns: 3000 },
  );
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(hello.length - 1), fc.integer({ min: 0, max: 255 })), {
        minLength: 1,
        maxLength: 8,
      }),
      fc.nat(hello.length),
      (edits, cut) => {
        const b = Buffer.from(hello);
        for (const [at, v] of edits) b[at] = v;
        const r = parseClientHello(b.subarray(0, cut));
        if (r.state === 'done' && r.serverName !== null)
          assert.match(r.serverName, /^[a-z0-9_.-]+$/);
      },
    ),
    { numRuns: 5000 },
  );
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: 300 }), { maxLength: 20 }), (sizes) => {
      assert.deepEqual(parseClientHello(refragment(hello, sizes)), {
        state: 'done',
        serverName: 'fuzz.example.com',
        alpn: ['h2', 'http/1.1'],
      });
    }),
    { numRuns: 500 },
  );
});

/** A well-framed ClientHello (records, lengths) around the given extensions: fuzzes the inner parsers. */
function helloWith(exts: [number, Uint8Array][]): Buffer {
  const ext = Buffer.concat(
    exts.map(([type, data]) =>
      Buffer.concat([
        Buffer.from([type >> 8, type & 0xff, data.length >> 8, data.length & 0xff]),
        data,
      ]),
    ),
  );
  const body = Buffer.concat([
    Buffer.from([3, 3]),
    Buffer.alloc(32),
    Buffer.from([0, 0, 2, 0x13, 0x01, 1, 0]),
    Buffer.from([ext.length >> 8, ext.length & 0xff]),
    ext,
  ]);
  const hs = Buffer.concat([Buffer.from([1, 0, body.length >> 8, body.length & 0xff]), body]);
  return Buffer.concat([Buffer.from([0x16, 3, 1, hs.length >> 8, hs.length & 0xff]), hs]);
}

test('client hello: arbitrary server_name and ALPN extension bodies never throw (fast-check)', () => {
  const sniBody = fc.oneof(
    fc.uint8Array({ maxLength: 40 }),
    // A list length that fits, around arbitrary entries: reaches the entry parser.
    fc
      .uint8Array({ maxLength: 40 })
      .map((e) => Uint8Array.from([e.length >> 8, e.length & 0xff, ...e])),
  );
  fc.assert(
    fc.property(sniBody, sniBody, (sni, alpn) => {
      for (const exts of [
        [[0, sni]],
        [[16, alpn]],
        [
          [0, sni],
          [16, alpn],
        ],
      ] as [number, Uint8Array][][]) {
        const r = parseClientHello(helloWith(exts));
        assert.notEqual(r.state, 'more');
      }
    }),
    { numRuns: 20000 },
  );
  assert.deepEqual(
    parseClientHello(helloWith([[0, Buffer.from([0, 6, 0, 0, 3, 0x61, 0x2e, 0x62])]])),
    {
      state: 'done',
      serverName: 'a.b',
      alpn: null,
    },
  );
});

test('sni routes: exact beats wildcard beats default; one-label wildcards; ALPN picks under a name', () => {
  const r = new SniRoutes<string>();
  assert.equal(r.add({ target: 'api', sni: ['API.example.com.'], alpn: null }), null);
  assert.equal(r.add({ target: 'grpc', sni: ['api.example.com'], alpn: ['h2'] }), null);
  assert.equal(r.add({ target: 'wild', sni: ['*.example.com'], alpn: null }), null);
  assert.equal(r.add({ target: 'other', sni: ['*'], alpn: null }), null);
  const table: [string | null, string[] | null, string | null][] = [
    ['api.example.com', null, 'api'],
    ['api.example.com', ['http/1.1'], 'api'],
    ['api.example.com', ['h2', 'http/1.1'], 'grpc'],
    ['www.example.com', ['h2'], 'wild'],
    ['a.b.example.com', null, 'other'],
    ['example.com', null, 'other'],
    [null, null, 'other'],
  ];
  for (const [name, alpn, want] of table)
    assert.equal(r.pick(name, alpn)?.target ?? null, want, `${name} ${alpn}`);
  assert.equal(r.pick('api.example.com', null)?.pattern, 'api.example.com');
  const noDefault = new SniRoutes<string>();
  noDefault.add({ target: 'h2only', sni: ['a.test'], alpn: ['h2'] });
  assert.equal(noDefault.pick('a.test', ['http/1.1']), null);
  assert.equal(noDefault.pick('b.test', null), null);
  // Ambiguous: the same name twice without ALPN, or with a protocol in common.
  assert.deepEqual(r.add({ target: 'dup', sni: ['*.EXAMPLE.com'], alpn: null }), {
    clash: 'wild',
    pattern: '*.example.com',
    alpn: null,
  });
  assert.equal(
    r.add({ target: 'dup2', sni: ['api.example.com'], alpn: ['h3', 'h2'] })?.clash,
    'grpc',
  );
});

const shared = (a: Record<string, unknown>, b: Record<string, unknown>) => ({
  services: {
    a: { listen: '127.0.0.1:8443', backends: ['127.0.0.1:9001'], ...a },
    b: { listen: '127.0.0.1:8443', backends: ['127.0.0.1:9002'], ...b },
  },
});

test('config: a shared listen needs sni everywhere, no ambiguous overlap, and one PROXY policy', () => {
  assert.doesNotThrow(() => parseConfig(shared({ sni: ['a.test'] }, { sni: ['*'] })));
  const bad: [Record<string, unknown>, Record<string, unknown>, RegExp][] = [
    [
      { sni: ['a.test'] },
      {},
      /services\.b\.sni: missing: 127\.0\.0\.1:8443 is shared with services\.a/,
    ],
    [
      { sni: ['*.test'] },
      { sni: ['*.TEST.'] },
      /services\.b\.sni: "\*\.test" is also routed to services\.a/,
    ],
    [{ sni: ['a.test'], alpn: ['h2'] }, { sni: ['a.test'], alpn: ['h2', 'h3'] }, /with ALPN "h2"/],
    [
      { sni: ['a.test'], accept_proxy: true, trusted_proxies: ['127.0.0.1'] },
      { sni: ['b.test'] },
      /services\.b\.accept_proxy: .* must match services\.a's/,
    ],
    [{ sni: ['a.test'], hello_timeout: '1s' }, { sni: ['b.test'] }, /hello_timeout must match/],
    [{ sni: ['a.*.test'] }, { sni: ['b.test'] }, /services\.a\.sni\[0\]: expected a host name/],
    [
      { alpn: ['h2'] },
      { listen: '127.0.0.1:8444' },
      /services\.a\.alpn: alpn routes by the ClientHello/,
    ],
  ];
  for (const [a, b, want] of bad) assert.throws(() => parseConfig(shared(a, b)), want);
  // Two plain services on one address are still the plain clash.
  assert.throws(() => parseConfig(shared({}, {})), /already the listen address of services\.a/);
});

test('config: [tls] keys are checked, paths taken from the config folder', () => {
  const c = parseConfig(
    {
      services: {
        a: {
          listen: '127.0.0.1:8443',
          backends: ['127.0.0.1:9001'],
          tls: { cert: 'a.pem', key: 'a.key', client_ca: '/etc/ca.pem' },
        },
      },
    },
    { baseDir: '/etc/blitz' },
  );
  assert.deepEqual(c.services[0]?.tls, {
    certificates: [{ cert: '/etc/blitz/a.pem', key: '/etc/blitz/a.key' }],
    alpn: null,
    minVersion: 'TLSv1.2',
    clientCa: '/etc/ca.pem',
    verifyClient: 'required',
    groups: null,
  });
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ cert: 'a.pem' }, /cert and key go together/],
    [{}, /needs a certificate/],
    [{ cert: 'a', key: 'b', verify_client: 'optional' }, /needs client_ca/],
    [
      { cert: 'a', key: 'b', min_version: 'TLSv1.1' },
      /min_version: expected one of TLSv1\.2 \| TLSv1\.3/,
    ],
    [
      { cert: 'a', key: 'b', certificates: [{ cert: 'c' }] },
      /certificates\[0\]: needs both cert and key/,
    ],
    [{ cert: 'a', key: 'b', alpn: [] }, /tls\.alpn: expected a non-empty array/],
    // HAProxy's word for it: check says what to write here (config/foreign.ts).
    [
      { cert: 'a', key: 'b', crt: 'x' },
      /tls\.crt: unknown key; "crt" is HAProxy's word: here write tls\.cert/,
    ],
  ];
  for (const [tls, want] of bad)
    assert.throws(
      () =>
        parseConfig({ services: { a: { listen: '127.0.0.1:1', backends: ['127.0.0.1:2'], tls } } }),
      want,
    );
});
