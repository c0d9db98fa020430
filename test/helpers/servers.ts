import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import type { TestContext } from 'node:test';
import { parseConfig } from '../../src/config/schema.js';
import { LoadBalancer, type LoadBalancerOptions } from '../../src/load-balancer.js';

/** "127.0.0.1:PORT", as configs name a loopback backend. */
export const addr = (port: number): string => `127.0.0.1:${port}`;

export type Closer = () => Promise<void> | void;

/** Listens on 127.0.0.1:0 and registers cleanup with the test. */
export async function listen(t: TestContext, server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return (server.address() as AddressInfo).port;
}

/** Echoes every byte; answers FIN with FIN once its writes are flushed. */
export function echoServer(t: TestContext): Promise<number> {
  const server = createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  return listen(t, server);
}

/** HTTP server that names itself in the body and in `x-backend`. */
export function httpServer(t: TestContext, name: string, keepAliveMs = 100): Promise<number> {
  const server = createHttpServer((req, res) => {
    req.resume();
    res.setHeader('x-backend', name);
    res.end(name);
  });
  server.keepAliveTimeout = keepAliveMs;
  return listen(t, server as unknown as Server);
}

/** Sends `banner` the moment a client connects, before reading anything. */
export function bannerServer(t: TestContext, banner: string): Promise<number> {
  const server = createServer((s) => {
    s.on('error', () => {});
    s.end(banner);
    s.resume();
  });
  return listen(t, server);
}

/** A server whose connection handler is yours, for fault scripts. */
export function scriptedServer(t: TestContext, onConn: (s: Socket) => void): Promise<number> {
  const server = createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {});
    onConn(s);
  });
  return listen(t, server);
}

/** The kernel's ephemeral range: where bind(0) and outgoing connects take their ports. */
const EPHEMERAL_LOW = (() => {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0]);
  } catch {
    return 32768;
  }
})();
const handedOut = new Set<number>();

/**
 * A loopback port that refuses connections now and stays free: it lies below
 * the ephemeral range, so no later listen(0) here is given it and no outgoing
 * connect uses it as its source port. (A port bound on 0 and closed was
 * handed straight back to the next listen(0): a "dead" backend became the
 * balancer's own listener, probed itself healthy, and a test hung.) Also
 * serves as a port for the CLI to listen on.
 */
export async function refusedPort(): Promise<number> {
  for (;;) {
    const port = 10_000 + Math.floor(Math.random() * (EPHEMERAL_LOW - 10_000));
    if (handedOut.has(port)) continue;
    const c = connect({ port, host: '127.0.0.1' });
    const refused = await new Promise<boolean>((resolve) => {
      c.once('connect', () => resolve(false));
      c.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
    });
    c.destroy();
    if (!refused) continue;
    handedOut.add(port);
    return port;
  }
}

/**
 * A blackhole: a listener with backlog 0 that never accepts. Node always
 * accepts, so a python3 child holds the socket; its accept queue is filled so
 * that further SYNs are dropped and connects hang until the dialer's deadline.
 */
export async function blackhole(t: TestContext): Promise<number> {
  const py = spawn(
    'python3',
    [
      '-c',
      'import socket,sys\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\nsys.stdin.read()',
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  t.after(() => {
    py.kill();
  });
  const [line] = (await once(py.stdout, 'data')) as [Buffer];
  const port = Number(line.toString().trim());
  // Fill the accept queue (capacity backlog + 1) so the next SYN is dropped.
  const fillers: Socket[] = [];
  for (let i = 0; i < 3; i++) {
    const f = connect(port, '127.0.0.1');
    f.on('error', () => {});
    fillers.push(f);
  }
  await once(fillers[0] as Socket, 'connect');
  t.after(() => {
    for (const f of fillers) f.destroy();
  });
  return port;
}

/** Starts a balancer from a config object (listen ports may be 0); closes it after the test. */
export async function startLb(
  t: TestContext,
  raw: Record<string, unknown>,
  opts: LoadBalancerOptions = {},
): Promise<LoadBalancer> {
  const lb = new LoadBalancer(
    parseConfig(raw, { source: '<test>', allowEphemeralListen: true }),
    opts,
  );
  await lb.start();
  t.after(() => lb.close(0));
  return lb;
}

/** One-service config with fast, test-sized deadlines. */
export function svc(
  backends: unknown[],
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    log: { level: 'silent' },
    services: {
      web: {
        listen: '127.0.0.1:0',
        backends,
        connect_timeout: '500ms',
        retry_delay: '10ms',
        health: { kind: 'none' },
        pool: { min_idle: 0 },
        ...extra,
      },
    },
  };
}

export function openClient(port: number): Promise<Socket> {
  const c = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  c.on('error', () => {});
  return once(c, 'connect').then(() => c);
}

/** Reads until the peer's FIN; resolves with everything read. */
export async function readAll(s: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  s.on('data', (d: Buffer) => chunks.push(d));
  await once(s, 'end');
  return Buffer.concat(chunks);
}

/** Reads exactly n bytes (or fewer if the stream ends). */
export function readBytes(s: Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const onData = (d: Buffer): void => {
      chunks.push(d);
      got += d.length;
      if (got >= n) done();
    };
    const done = (): void => {
      s.off('data', onData);
      s.off('end', done);
      s.off('error', reject);
      resolve(Buffer.concat(chunks));
    };
    s.on('data', onData);
    s.once('end', done);
    s.once('error', reject);
  });
}

/**
 * Polls a condition until it holds or `ms` passes: for state that emits no
 * event (fd counts, or the admin API, which `cond` may await).
 */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  ms = 5000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms}ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Polls a reading until it has held still for `quietMs` (or `ms` passes): a
 * sender held by backpressure, a counter that stopped moving.
 */
export async function waitForSteady(
  read: () => number,
  quietMs: number,
  ms = 5000,
  what = 'a steady value',
): Promise<void> {
  let last = read();
  let since = Date.now();
  await waitFor(
    () => {
      const now = read();
      if (now !== last) {
        last = now;
        since = Date.now();
      }
      return Date.now() - since >= quietMs;
    },
    ms,
    what,
  );
}

/** Resolves when the peer ends the socket (FIN) or it closes (reset, destroy). */
export function ended(c: Socket): Promise<void> {
  return new Promise((r) => {
    c.once('end', () => r());
    c.once('close', () => r());
  });
}

export function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** One HTTP/1.0-style GET over a fresh connection; resolves with the body. */
export async function httpGet(port: number, path = '/'): Promise<string> {
  const c = await openClient(port);
  c.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  const raw = (await readAll(c)).toString();
  c.destroy();
  return raw.slice(raw.indexOf('\r\n\r\n') + 4);
}

/** Connects from `from` to the balancer, sends `hi` (after `header`), half-closes; what came back (the echo, or nothing when refused). */
export async function exchange(
  port: number,
  host: string,
  from: string,
  header: Buffer | null = null,
): Promise<string> {
  const c = connect({ port, host, localAddress: from, allowHalfOpen: true });
  const chunks: Buffer[] = [];
  c.on('data', (d: Buffer) => chunks.push(d));
  c.on('error', () => {});
  c.on('connect', () => {
    if (header) c.write(header);
    c.end('hi');
  });
  // Not once(): a refused client may see a reset, and once() rejects on 'error'.
  await new Promise((r) => c.once('close', r));
  return Buffer.concat(chunks).toString();
}
