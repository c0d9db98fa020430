import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { type TestContext, test } from 'node:test';
import { createRegistry } from '../src/admin/metrics.js';
import { parseConfig } from '../src/config/schema.js';
import type { LoadBalancer } from '../src/load-balancer.js';
import { value } from './helpers/admin.js';
import { cfgOf } from './helpers/config.js';
import {
  addr,
  listen,
  openClient,
  readAll,
  refusedPort,
  sha256,
  startLb,
  svc,
  waitFor,
} from './helpers/servers.js';

/** What a sink got on one connection: the digest and size of every byte, once the peer ended. */
interface Got {
  bytes: number;
  digest: string;
  head: string;
}

/**
 * A TCP sink: hashes each connection's bytes; at the client's FIN it answers
 * `reply` and ends. `connections` counts accepts; `done` collects finished ones.
 */
async function sink(t: TestContext, reply = 'ok') {
  const done: Got[] = [];
  const state = { connections: 0, done };
  const server = createServer({ allowHalfOpen: true }, (s: Socket) => {
    state.connections++;
    s.on('error', () => {});
    const h = createHash('sha256');
    let bytes = 0;
    let head = '';
    s.on('data', (d: Buffer) => {
      if (head.length < 64) head += d.subarray(0, 64 - head.length).toString('latin1');
      h.update(d);
      bytes += d.length;
    });
    s.on('end', () => {
      done.push({ bytes, digest: h.digest('hex'), head });
      s.end(reply);
    });
  });
  const port = await listen(t, server);
  return { port, ...state, state };
}

/** A mirror that accepts and then never reads: its receive window fills, then the balancer's buffer would. */
async function stalled(t: TestContext) {
  const state = { connections: 0 };
  const server = createServer((s: Socket) => {
    state.connections++;
    s.on('error', () => {});
    s.pause();
  });
  return { port: await listen(t, server), state };
}

/** Sends `data` through the balancer in 64 KiB writes, half-closes, and reads the backend's answer. */
async function transfer(port: number, data: Buffer): Promise<{ answer: string; ms: number }> {
  const started = performance.now();
  const c = await openClient(port);
  const answer = readAll(c);
  for (let off = 0; off < data.length; off += 65536) {
    if (!c.write(data.subarray(off, off + 65536))) await once(c, 'drain');
  }
  c.end();
  const text = (await answer).toString();
  c.destroy();
  return { answer: text, ms: performance.now() - started };
}

async function metrics(lb: LoadBalancer): Promise<string> {
  return createRegistry(lb).metrics();
}

const counter = (text: string, name: string, labels = 'service="web"') =>
  value(text, `blitz_lb_${name}{${labels}}`);

test('mirror: a byte-exact copy of an 8 MiB client stream reaches a mirror that keeps up, and the backend gets it byte-exact too', async (t) => {
  const backend = await sink(t);
  const mirror = await sink(t, 'from the mirror, never seen');
  const lb = await startLb(
    t,
    svc([addr(backend.port)], { mirror: { backend: addr(mirror.port), percent: 100 } }),
  );
  const data = randomBytes(8 * 1024 * 1024);
  const r = await transfer(lb.address('web').port, data);
  // The client sees the backend's answer only: the mirror's is read and thrown away.
  assert.equal(r.answer, 'ok');
  await waitFor(() => mirror.done.length === 1, 10_000, 'the mirror to get the whole stream');
  assert.deepEqual(backend.done[0], {
    bytes: data.length,
    digest: sha256(data),
    head: backend.done[0]?.head,
  });
  assert.equal(mirror.done[0]?.bytes, data.length);
  assert.equal(mirror.done[0]?.digest, sha256(data));
  await waitFor(async () => counter(await metrics(lb), 'mirror_bytes_total') === data.length);
  const m = await metrics(lb);
  assert.equal(counter(m, 'mirror_sessions_total'), 1);
  assert.equal(counter(m, 'mirror_drops_total', 'service="web",cause="buffer-full"'), 0);
});

test('mirror: a mirror that accepts and never reads costs the client nothing: it is dropped (buffer-full, counted) and the transfer is byte-exact', async (t) => {
  const backend = await sink(t);
  const plain = await startLb(t, svc([addr(backend.port)]));
  const mirror = await stalled(t);
  const lb = await startLb(
    t,
    svc([addr(backend.port)], {
      mirror: { backend: addr(mirror.port), percent: 100, buffer: '256KiB' },
    }),
  );
  const data = randomBytes(16 * 1024 * 1024);
  // Alternate, so both see the same machine load.
  const without: number[] = [];
  const withMirror: number[] = [];
  for (let i = 0; i < 3; i++) {
    without.push((await transfer(plain.address('web').port, data)).ms);
    const r = await transfer(lb.address('web').port, data);
    assert.equal(r.answer, 'ok');
    withMirror.push(r.ms);
  }
  for (const got of backend.done) assert.equal(got.digest, sha256(data));
  assert.equal(backend.done.length, 6);
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[1] as number;
  // Same order of time (a stalled mirror would have stalled it for good, or to its buffer's pace).
  assert.ok(
    median(withMirror) < median(without) * 2 + 200,
    `with a stalled mirror ${withMirror.map(Math.round)} ms, without ${without.map(Math.round)} ms`,
  );
  const m = await metrics(lb);
  assert.equal(counter(m, 'mirror_sessions_total'), 3);
  assert.equal(counter(m, 'mirror_drops_total', 'service="web",cause="buffer-full"'), 3);
});

test('mirror: a refused mirror and a mirror that resets leave the session whole; each is counted', async (t) => {
  const backend = await sink(t);
  const refused = await refusedPort();
  const lbRefused = await startLb(
    t,
    svc([addr(backend.port)], { mirror: { backend: addr(refused) } }),
  );
  const resetter = createServer((s: Socket) => {
    s.on('error', () => {});
    s.once('data', () => s.resetAndDestroy());
  });
  const resetPort = await listen(t, resetter);
  const lbReset = await startLb(
    t,
    svc([addr(backend.port)], { mirror: { backend: addr(resetPort) } }),
  );
  const data = randomBytes(4 * 1024 * 1024);
  for (const lb of [lbRefused, lbReset]) {
    const r = await transfer(lb.address('web').port, data);
    assert.equal(r.answer, 'ok');
  }
  assert.deepEqual(
    backend.done.map((g) => g.digest),
    [sha256(data), sha256(data)],
  );
  const a = await metrics(lbRefused);
  assert.equal(counter(a, 'mirror_drops_total', 'service="web",cause="connect-failed"'), 1);
  await waitFor(
    async () =>
      counter(await metrics(lbReset), 'mirror_drops_total', 'service="web",cause="reset"') === 1,
    5000,
    'the reset to be counted',
  );
});

test('mirror: percent = 0 opens no mirror connection; 25 mirrors exactly every fourth session; 100 every one', async (t) => {
  const backend = await sink(t);
  for (const [percent, want] of [
    [0, 0],
    [25, 5],
    [100, 20],
  ] as const) {
    const mirror = await sink(t);
    const lb = await startLb(
      t,
      svc([addr(backend.port)], { mirror: { backend: addr(mirror.port), percent } }),
    );
    for (let i = 0; i < 20; i++) {
      const r = await transfer(lb.address('web').port, Buffer.from(`session ${i}`));
      assert.equal(r.answer, 'ok');
    }
    await waitFor(() => mirror.done.length === want, 5000, `${want} mirrored sessions`);
    assert.equal(mirror.state.connections, want);
    assert.equal(counter(await metrics(lb), 'mirror_sessions_total'), want);
  }
});

test('mirror: with send_proxy and a warm socket, the mirror gets the same PROXY header first, then the bytes', async (t) => {
  const backend = await sink(t);
  const mirror = await sink(t);
  const lb = await startLb(
    t,
    svc([addr(backend.port)], {
      send_proxy: 'v1',
      pool: { min_idle: 1, max_idle: 1 },
      mirror: { backend: addr(mirror.port) },
    }),
  );
  await waitFor(() => lb.service('web').pool.idleCount === 1, 3000, 'the warm socket');
  await transfer(lb.address('web').port, Buffer.from('hello mirror'));
  await waitFor(() => mirror.done.length === 1);
  assert.match(
    mirror.done[0]?.head ?? '',
    /^PROXY TCP4 127\.0\.0\.1 127\.0\.0\.1 \d+ \d+\r\nhello mirror$/,
  );
  assert.equal(mirror.done[0]?.head, backend.done[0]?.head);
});

test('mirror: a reload adds the mirror for new sessions, and removing it stops mirroring', async (t) => {
  const backend = await sink(t);
  const mirror = await sink(t);
  const base = svc([addr(backend.port)]);
  const web = (base.services as Record<string, Record<string, unknown>>).web as Record<
    string,
    unknown
  >;
  const lb = await startLb(t, base);
  const port = lb.address('web').port;
  const listenAt = web;
  await transfer(port, Buffer.from('before'));
  await lb.reload(
    cfgOf({ ...base, services: { web: { ...listenAt, mirror: { backend: addr(mirror.port) } } } }),
  );
  await transfer(port, Buffer.from('while mirrored'));
  await waitFor(() => mirror.done.length === 1);
  await lb.reload(cfgOf({ ...base, services: { web: listenAt } }));
  await transfer(port, Buffer.from('after'));
  assert.equal(backend.done.length, 3);
  assert.equal(mirror.state.connections, 1);
  assert.equal(mirror.done[0]?.head, 'while mirrored');
});

test('mirror config: every mistake is named with its path', () => {
  const base = (mirror: unknown) => svc(['127.0.0.1:9001'], { listen: '127.0.0.1:8080', mirror });
  const ok = parseConfig(base({ backend: '127.0.0.1:9100', percent: 10, buffer: '4MiB' }));
  assert.deepEqual(ok.services[0]?.mirror, {
    address: '127.0.0.1:9100',
    host: '127.0.0.1',
    port: 9100,
    percent: 10,
    bufferBytes: 4 * 1024 * 1024,
  });
  assert.equal(
    parseConfig(base({ backend: '127.0.0.1:9100' })).services[0]?.mirror?.bufferBytes,
    1024 * 1024,
  );
  const bad: [unknown, RegExp][] = [
    [
      { percent: 10 },
      /services\.web\.mirror\.backend: missing; a mirror needs backend = "host:port"/,
    ],
    [{ backend: '9100' }, /services\.web\.mirror\.backend: expected "host:port"/],
    [
      { backend: '127.0.0.1:9100', percent: 150 },
      /services\.web\.mirror\.percent: must be 0-100, got 150/,
    ],
    [
      { backend: '127.0.0.1:9100', percent: 2.5 },
      /services\.web\.mirror\.percent: expected a whole number/,
    ],
    [
      { backend: '127.0.0.1:9100', buffer: '1 parsec' },
      /services\.web\.mirror\.buffer: expected whole bytes or a size/,
    ],
    [
      { backend: '127.0.0.1:9100', buffer: '1KiB' },
      /services\.web\.mirror\.buffer: must be 16KiB-1GiB/,
    ],
    [
      { backend: '127.0.0.1:9100', percnt: 5 },
      /services\.web\.mirror\.percnt: unknown key.*percent/,
    ],
    ['127.0.0.1:9100', /services\.web\.mirror: expected a table/],
  ];
  for (const [mirror, re] of bad)
    assert.throws(() => parseConfig(base(mirror)), re, JSON.stringify(mirror));
});
