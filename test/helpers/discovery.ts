import { once } from 'node:events';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import type { TestContext } from 'node:test';
import { formatHostPort } from '../../src/config/address.js';
import type { LoadBalancer } from '../../src/load-balancer.js';
import { createLogger } from '../../src/logger.js';
import { openClient, waitFor } from './servers.js';

export interface Named {
  host: string;
  port: number;
  /** "host:port" as the balancer names the backend. */
  address: string;
  /** Sessions open on it now. */
  open: Set<Socket>;
}

/**
 * A backend on `host` (any loopback address, 127.0.0.X or ::1) and `port` (0:
 * any) that writes its own address and a newline to each client, then echoes.
 */
export async function namedServer(t: TestContext, host: string, port = 0): Promise<Named> {
  const open = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {});
    open.add(s);
    s.on('close', () => open.delete(s));
    const a = s.localAddress ?? host;
    s.write(`${formatHostPort(a.replace(/^::ffff:/, ''), s.localPort ?? port)}\n`);
    s.pipe(s);
  });
  server.listen(port, host);
  await once(server, 'listening');
  t.after(() => {
    for (const s of open) s.destroy();
    server.close();
  });
  const p = (server.address() as AddressInfo).port;
  return { host, port: p, address: formatHostPort(host, p), open };
}

/** Backends on several loopback addresses sharing one port (what a DNS name's records give). */
export async function namedOnOnePort(t: TestContext, hosts: string[]): Promise<Named[]> {
  for (;;) {
    const first = await namedServer(t, hosts[0] as string);
    try {
      const rest = [];
      for (const h of hosts.slice(1)) rest.push(await namedServer(t, h, first.port));
      return [first, ...rest];
    } catch {
      // That port was taken on another address: try another.
    }
  }
}

/** Opens a session through the balancer; resolves with it and the backend that answered. */
export async function session(port: number): Promise<{ client: Socket; backend: string }> {
  const c = await openClient(port);
  const line = await new Promise<string>((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer): void => {
      buf += d.toString();
      if (!buf.includes('\n')) return;
      c.off('data', onData);
      c.off('end', onClose);
      c.off('close', onClose);
      resolve(buf.slice(0, buf.indexOf('\n')));
    };
    const onClose = (): void => {
      c.destroy();
      reject(new Error('the balancer ended the session before a backend spoke: no backend?'));
    };
    c.on('data', onData);
    c.once('end', onClose);
    c.once('close', onClose);
  });
  return { client: c, backend: line };
}

/** The backends that answer `n` sessions (each closed after its greeting). */
export async function answering(port: number, n = 12): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const s = await session(port);
    seen.add(s.backend);
    s.client.destroy();
  }
  return seen;
}

/** The service's backend addresses, sorted. */
export function addresses(lb: LoadBalancer, service = 'web'): string[] {
  return lb
    .service(service)
    .backends.all.map((b) => b.address)
    .sort();
}

/** Waits until the service's backends are exactly `want` (any order). */
export function waitForBackends(
  lb: LoadBalancer,
  want: string[],
  ms = 5000,
  service = 'web',
): Promise<void> {
  const sorted = [...want].sort();
  return waitFor(
    () => addresses(lb, service).join(' ') === sorted.join(' '),
    ms,
    `backends ${sorted.join(', ')} (have ${addresses(lb, service).join(', ')})`,
  );
}

/** A one-service config whose backends come from `discovery` (plus `backends`, if any). */
export function discovering(
  discovery: Record<string, unknown>,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    log: { level: 'silent' },
    services: {
      web: {
        listen: '127.0.0.1:0',
        connect_timeout: '500ms',
        retry_delay: '10ms',
        health: { kind: 'none' },
        pool: { min_idle: 0 },
        discovery,
        ...extra,
      },
    },
  };
}

/** A pino logger whose lines a test can read. */
export function captured(level: 'info' | 'warn' = 'warn') {
  const lines: { level: number; msg: string; [k: string]: unknown }[] = [];
  const logger = createLogger(level, {
    write: (l: string) => {
      lines.push(JSON.parse(l));
    },
  });
  return { logger, lines };
}

/** One sample's value from a Prometheus text body, by its full name and labels as written. */
export function metric(text: string, sample: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? undefined : Number(line.slice(sample.length + 1));
}
