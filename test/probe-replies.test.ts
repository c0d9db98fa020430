import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { Backend } from '../src/backend/backend.js';
import { parseConfig } from '../src/config/schema.js';
import { parseAgentReply } from '../src/health/agent.js';
import { converse, type Step, type StepVerdict } from '../src/health/exchange.js';
import { httpProbe } from '../src/health/http-probe.js';
import { mysqlSteps } from '../src/health/mysql-probe.js';
import { postgresSteps } from '../src/health/postgres-probe.js';
import { redisSteps } from '../src/health/redis-probe.js';
import { sendExpectSteps } from '../src/health/send-expect.js';
import { smtpSteps } from '../src/health/smtp-probe.js';
import { arrivals, chunkSizes, confined, mutated } from './helpers/fuzz.js';
import { addr, scriptedServer, startLb, svc } from './helpers/servers.js';

/**
 * Every reply parser of the health probes, fuzzed as the ClientHello parser
 * is (test/client-hello.test.ts): random bytes, every prefix of a valid
 * reply, mutated and cut replies, and valid replies re-fragmented. None may
 * throw, read past what it was given, or answer other than null / true / a
 * reason; a valid reply gets the same verdict however it is cut.
 */

const local = (port: number) => ({ host: '127.0.0.1', port });

function mysqlPacket(payload: Buffer, seq = 0): Buffer {
  const h = Buffer.alloc(4);
  h.writeUIntLE(payload.length, 0, 3);
  h[3] = seq;
  return Buffer.concat([h, payload]);
}

const MYSQL_GREETING = mysqlPacket(
  Buffer.concat([
    Buffer.from([0x0a]),
    Buffer.from('10.11.6-MariaDB-0+deb12u1\0', 'latin1'),
    Buffer.from('0b000000', 'hex'),
    Buffer.from('4a3b2c1d5e6f7a8b00fef7', 'hex'),
  ]),
);
const MYSQL_ERROR = mysqlPacket(
  Buffer.concat([Buffer.from([0xff, 0x10, 0x04]), Buffer.from('#08004Too many connections')]),
);
const PG_ERROR = Buffer.concat([
  Buffer.from('E'),
  Buffer.from('0000002a', 'hex'),
  Buffer.from('SFATAL\0C53300\0Msorry, too many clients\0\0'),
]);
const INFO = '# Replication\r\nrole:master\r\nconnected_slaves:0\r\n';

const sendExpect = sendExpectSteps(
  parseConfig(
    svc(['127.0.0.1:1'], {
      health: {
        kind: 'send-expect',
        steps: [
          { send: 'HELLO\r\n', expect: 'WELCOME' },
          { send_hex: '00', expect_hex: '0d0a2e0d0a' },
          { send: 'STATUS\r\n', expect_regex: '^STATUS (ok|degraded)\\r\\n' },
        ],
      },
    }),
    { allowEphemeralListen: true },
  ).services[0]?.health.steps ?? [],
);

/** Each parser, with replies a real server sends (good and bad). */
const PARSERS: { name: string; step: Step; replies: Buffer[] }[] = [
  { name: 'mysql greeting', step: mysqlSteps()[0] as Step, replies: [MYSQL_GREETING, MYSQL_ERROR] },
  {
    name: 'postgres SSLRequest answer',
    step: postgresSteps()[0] as Step,
    replies: [Buffer.from('S'), Buffer.from('N'), PG_ERROR],
  },
  {
    name: 'redis PING',
    step: redisSteps('master')[0] as Step,
    replies: [Buffer.from('+PONG\r\n'), Buffer.from('-NOAUTH Authentication required.\r\n')],
  },
  {
    name: 'redis INFO replication',
    step: redisSteps('master')[1] as Step,
    replies: [Buffer.from(`$${INFO.length}\r\n${INFO}\r\n`), Buffer.from('-LOADING\r\n')],
  },
  {
    name: 'smtp banner',
    step: smtpSteps()[0] as Step,
    replies: [Buffer.from('220-mx.example.org ESMTP\r\n220 ready\r\n'), Buffer.from('554 no\r\n')],
  },
  ...sendExpect.map((step, i) => ({
    name: `send-expect step ${i + 1}`,
    step,
    replies: [
      Buffer.from('WELCOME v2\r\n'),
      Buffer.from('a\r\n.\r\n'),
      Buffer.from('STATUS ok\r\n'),
    ],
  })),
];

function verdictOk(v: StepVerdict): boolean {
  return v === null || v === true || (typeof v === 'string' && v.length > 0);
}

/** What a conversation concludes from these arrivals: the first verdict that is not "wait". */
function conclusion(check: (b: Buffer) => StepVerdict, seen: Buffer[]): StepVerdict {
  for (const b of seen) {
    const v = check(b);
    if (v !== null) return v;
  }
  return null;
}

test('probe replies: the mysql error packet 01 00 00 00 ff fails the check with a reason, not a RangeError', () => {
  const check = (mysqlSteps()[0] as Step).check as (b: Buffer) => StepVerdict;
  const v = check(Buffer.from('01000000ff', 'hex'));
  assert.equal(typeof v, 'string');
  assert.match(String(v), /^mysql: error packet of 1 byte/);
  // Two bytes of payload: still no room for the code.
  assert.match(String(check(Buffer.from('02000000ff10', 'hex'))), /too short for a code/);
  // A whole error packet still gives its code and message.
  assert.equal(check(MYSQL_ERROR), 'mysql: error 1040 Too many connections');
});

test('probe replies: no reply parser throws or reads past its input (fast-check: random, prefixes, mutated, re-fragmented)', () => {
  for (const { name, step, replies } of PARSERS) {
    const check = step.check as (b: Buffer) => StepVerdict;
    const judged = (b: Uint8Array): StepVerdict => {
      const v = confined(check, b);
      assert.ok(verdictOk(v), `${name}: verdict ${String(v)}`);
      return v;
    };
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
        judged(b);
      }),
      { numRuns: 400 },
    );
    for (const r of replies) {
      const whole = judged(r);
      for (let i = 0; i <= r.length; i++) judged(r.subarray(0, i));
      fc.assert(
        fc.property(mutated(r), (b) => {
          judged(b);
        }),
        { numRuns: 300 },
      );
      // However the reply is cut into 'data' events, the conversation concludes the same.
      const oneByOne = conclusion(check, arrivals(r, Array(r.length).fill(1)));
      fc.assert(
        fc.property(chunkSizes(), (sizes) => {
          assert.equal(conclusion(check, arrivals(r, sizes)), oneByOne, `${name}: ${sizes}`);
        }),
        { numRuns: 100 },
      );
      if (whole !== null) assert.notEqual(oneByOne, null, `${name}: a whole reply gets a verdict`);
    }
  }
});

test('probe replies: agent lines of any bytes, every prefix of a real one and mutated ones parse without throwing (fast-check)', () => {
  const text = fc.oneof(
    fc.string({ maxLength: 200 }),
    fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString('latin1')),
    fc
      .array(
        fc.constantFrom('up', 'down', 'drain', 'maint', 'ready', '75%', '100%', '#', ' ', ','),
        {
          maxLength: 12,
        },
      )
      .map((w) => w.join(' ')),
  );
  const sane = (line: string) => {
    const r = parseAgentReply(line);
    assert.ok(r.percent === null || (r.percent >= 0 && r.percent <= 100));
    assert.ok(r.reason === null || r.reason.length <= 120);
    return r;
  };
  fc.assert(
    fc.property(text, (line) => {
      sane(line);
    }),
    { numRuns: 3000 },
  );
  // Every prefix of real replies (a line cut by a close), and mutated ones.
  for (const valid of ['up 75%', 'drain', 'down#disk full', 'ready,up 100%', 'maint # upgrading']) {
    for (let i = 0; i <= valid.length; i++) sane(valid.slice(0, i));
    fc.assert(
      fc.property(mutated(Buffer.from(valid, 'latin1')), (b) => {
        sane(b.toString('latin1'));
      }),
      { numRuns: 300 },
    );
  }
  assert.deepEqual(sane('up 75%'), { health: 'up', admin: null, percent: 75, reason: null });
});

test('probe replies: a check that throws is a failed check with a reason, and the conversation ends', async (t) => {
  const port = await scriptedServer(t, (s) => s.write('hello\r\n'));
  const boom: Step = {
    send: null,
    check: () => {
      throw new RangeError('out of range');
    },
    what: 'a greeting',
  };
  const r = await converse(local(port), [boom], 2000, 'ok');
  assert.equal(r.ok, false);
  assert.match(r.detail, /^reply to a greeting not understood \(RangeError\) \(got "hello\.\."\)$/);
});

test('probe replies: a server answering the mysql probe with 01 00 00 00 ff marks its backend down, with the reason, and the process lives', async (t) => {
  const port = await scriptedServer(t, (s) => s.end(Buffer.from('01000000ff', 'hex')));
  const lb = await startLb(
    t,
    svc([addr(port)], { health: { kind: 'mysql', interval: '1h', timeout: '1s', fall: 1 } }),
  );
  await lb.service('web').probeNow();
  const b = lb.service('web').backends.all[0] as Backend;
  assert.equal(b.healthy, false);
  assert.match(String(b.lastCheck?.detail), /^mysql: error packet of 1 byte/);
  assert.match(String(b.downReason), /^probe: mysql: error packet of 1 byte/);
});

test('probe replies: the HTTP probe answers ok or a reason for any reply bytes (random, cut, mutated, re-fragmented on the wire), never throws, and never waits out its timeout on a closed reply (fast-check, real sockets)', async (t) => {
  let reply: Buffer = Buffer.alloc(0);
  let cuts: number[] = [];
  const port = await scriptedServer(t, (s) => {
    // The reply in pieces, one write a turn of the event loop: re-fragmented on the wire.
    s.once('data', () => {
      const parts = arrivals(reply, cuts);
      let at = 0;
      const next = (i: number): void => {
        if (i >= parts.length || s.destroyed) {
          s.end();
          return;
        }
        const upTo = (parts[i] as Buffer).length;
        s.write(reply.subarray(at, upTo));
        at = upTo;
        setImmediate(() => next(i + 1));
      };
      next(0);
    });
  });
  const valid = Buffer.from(
    'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello',
  );
  const chunked = Buffer.from(
    'HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  );
  const replies = fc.oneof(
    fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
    mutated(valid),
    mutated(chunked),
    fc.nat(valid.length).map((n) => valid.subarray(0, n)),
  );
  await fc.assert(
    fc.asyncProperty(replies, chunkSizes(40), async (b, sizes) => {
      reply = b;
      cuts = sizes;
      const r = await httpProbe({ ...local(port), address: addr(port) }, '/', 3000);
      assert.equal(typeof r.ok, 'boolean');
      assert.ok(r.detail.length > 0);
      // The server closes after its reply: an answer comes from the bytes or the close, not the timeout.
      assert.doesNotMatch(r.detail, /^timeout/, `reply ${JSON.stringify(b.toString('latin1'))}`);
    }),
    { numRuns: 150 },
  );
  reply = valid;
  cuts = [1, 1, 1, 5, 20];
  const ok = await httpProbe({ ...local(port), address: addr(port) }, '/', 3000);
  assert.deepEqual([ok.ok, ok.detail], [true, 'HTTP 200']);
});
