import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { type TestContext, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import type { LoadBalancer } from '../src/load-balancer.js';
import { captureHello } from './helpers/hello.js';
import { makeIssuer } from './helpers/issuer.js';
import { addr, echoServer, startLb, waitFor } from './helpers/servers.js';

/**
 * Issue 24 item 3: allow/deny and max_connections_per_source apply at accept,
 * before any byte is read, on every kind of listener; a client still sending
 * its hello counts against its own source. Idle connections from one denied
 * or over-limit address must not fill a listener and lock the others out.
 */

const IDLE = 80;
/** Far below hello_timeout: a client that waits for its hello would still be open. */
const REFUSED_WITHIN_MS = 5000;

/** `n` clients from `from` that connect and send nothing. */
async function idleClients(t: TestContext, port: number, from: string, n: number) {
  const socks: Socket[] = [];
  const closed: Promise<unknown>[] = [];
  for (let i = 0; i < n; i++) {
    const c = connect({ port, host: '127.0.0.1', localAddress: from });
    c.on('error', () => {});
    // Not once(): a refused client may see a reset, and once() rejects on 'error'.
    closed.push(new Promise((r) => c.once('close', r)));
    socks.push(c);
  }
  t.after(() => {
    for (const c of socks) c.destroy();
  });
  return { socks, closed };
}

/** How many of `closed` settle before the deadline (the refused ones close at accept). */
async function closedInTime(closed: Promise<unknown>[], count: number): Promise<void> {
  let n = 0;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    new Promise<void>((resolve) => {
      for (const p of closed)
        void p.then(() => {
          if (++n === count) resolve();
        });
    }),
    new Promise<void>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(`${n} of ${count} refused clients closed within ${REFUSED_WITHIN_MS}ms`),
          ),
        REFUSED_WITHIN_MS,
      );
    }),
  ]).finally(() => clearTimeout(timer));
}

type Kind = 'plain' | 'sni' | 'sni+terminate' | 'terminate';

async function balancer(t: TestContext, kind: Kind) {
  const backend = await echoServer(t);
  const pki = makeIssuer(t);
  const cert = pki.server(['b.test']);
  const base = {
    listen: '127.0.0.1:0',
    backends: [addr(backend)],
    connect_timeout: '500ms',
    health: { kind: 'none' },
    pool: { min_idle: 0 },
    max_connections: 20,
    deny: ['127.0.0.2'],
    max_connections_per_source: 2,
    hello_timeout: '30s',
  };
  const tls = { cert: cert.cert, key: cert.key };
  const services: Record<string, unknown> =
    kind === 'plain'
      ? { a: base }
      : kind === 'terminate'
        ? { b: { ...base, tls } }
        : kind === 'sni'
          ? { a: { ...base, sni: ['a.test'] }, b: { ...base, sni: ['b.test'] } }
          : { a: { ...base, sni: ['a.test'] }, b: { ...base, sni: ['b.test'], tls } };
  const lb = await startLb(t, { log: { level: 'silent' }, services });
  const name = kind === 'terminate' ? 'b' : 'a';
  return { lb, port: lb.address(name).port, ca: pki.ca };
}

/** A well-behaved client from 127.0.0.1 gets through: its bytes come back from the echo backend. */
async function served(kind: Kind, port: number, ca: Buffer | string): Promise<void> {
  if (kind === 'terminate' || kind === 'sni+terminate') {
    const c = tlsConnect({ port, host: '127.0.0.1', servername: 'b.test', ca });
    c.on('error', () => {});
    await once(c, 'secureConnect');
    c.write('ping');
    const [d] = (await once(c, 'data')) as [Buffer];
    assert.equal(d.toString(), 'ping');
    c.destroy();
    return;
  }
  const c = connect({ port, host: '127.0.0.1' });
  c.on('error', () => {});
  await once(c, 'connect');
  const bytes = kind === 'sni' ? await captureHello({ servername: 'a.test' }) : Buffer.from('ping');
  c.write(bytes);
  let got = Buffer.alloc(0);
  while (got.length < bytes.length) {
    const [d] = (await once(c, 'data')) as [Buffer];
    got = Buffer.concat([got, d]);
  }
  assert.deepEqual(got, bytes);
  c.destroy();
}

/**
 * Waits until the service counts no more than `n` open sessions: a refused
 * session leaves its service's count at its socket's 'close', a tick after
 * the client saw it closed.
 */
async function settled(lb: LoadBalancer, kind: Kind, n: number): Promise<void> {
  if (kind === 'sni' || kind === 'sni+terminate') return;
  const s = lb.service(kind === 'terminate' ? 'b' : 'a');
  await waitFor(() => s.activeSessions <= n, 3000, `at most ${n} open sessions`);
}

function refusedCounts(lb: LoadBalancer, kind: Kind): { denied: number; source: number } {
  if (kind === 'sni' || kind === 'sni+terminate') {
    const f = [...lb.listenerRefusals.values()][0];
    return { denied: f?.['refused-denied'] ?? 0, source: f?.['refused-source'] ?? 0 };
  }
  const s = lb.service(kind === 'terminate' ? 'b' : 'a').counters;
  return { denied: s.refusedDenied, source: s.refusedSourceConnections };
}

for (const kind of ['plain', 'sni', 'sni+terminate', 'terminate'] as const) {
  test(`admission (${kind} listener): ${IDLE} idle clients from a denied address are closed at accept and lock nobody out`, async (t) => {
    const { lb, port, ca } = await balancer(t, kind);
    const { closed } = await idleClients(t, port, '127.0.0.2', IDLE);
    await closedInTime(closed, IDLE);
    assert.equal(refusedCounts(lb, kind).denied, IDLE);
    await settled(lb, kind, 0);
    await served(kind, port, ca);
  });

  test(`admission (${kind} listener): ${IDLE} idle clients from one source hold only its per-source limit; the rest close at accept`, async (t) => {
    const { lb, port, ca } = await balancer(t, kind);
    const { socks, closed } = await idleClients(t, port, '127.0.0.3', IDLE);
    await closedInTime(closed, IDLE - 2);
    assert.equal(refusedCounts(lb, kind).source, IDLE - 2);
    await settled(lb, kind, 2);
    await served(kind, port, ca);
    assert.equal(socks.filter((c) => !c.destroyed).length, 2, 'the two within the limit wait on');
  });
}
