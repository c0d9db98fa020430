import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo, isIPv4 } from 'node:net';
import type { Registry } from 'prom-client';
import type { Backend } from '../backend/backend.js';
import { type HostPort, isLoopback } from '../config/address.js';
import { LbError } from '../errors.js';
import type { LoadBalancer, ReloadSummary } from '../load-balancer.js';
import type { Logger } from '../logger.js';
import { createRegistry } from './metrics.js';
import { STATUS_PAGE } from './status-page.js';
import { backendView, type ServiceView, servicesView } from './views.js';

export interface AdminOptions {
  listen: HostPort;
  /** When set, write calls need `Authorization: Bearer <token>`. */
  token: string | null;
  /**
   * Host header values accepted besides the listen address and loopback names,
   * as a browser sends them: "lb.internal:9900", or "lb.internal" behind port 80.
   */
  allowedHosts?: readonly string[];
  /** Re-reads the config and applies it; rejects with the reason when the file is invalid. */
  reload: (() => Promise<ReloadSummary>) | null;
  log: Logger;
  /** With workers: views and metrics gathered from every process (see cluster/reports.ts). */
  cluster?: AdminCluster | null;
}

/** What the admin server needs from a cluster primary. Backend actions still go to the LoadBalancer. */
export interface AdminCluster {
  servicesView(): Promise<unknown>;
  metrics(): Promise<{ body: string; contentType: string }>;
}

/**
 * What one admin port may hold. Every connection is a descriptor the balancer
 * needs for clients, backends and probes, so the admin server takes few and
 * lets go of silent or slow ones within seconds. Node checks the header and
 * request deadlines every `checkIntervalMs` (30 s by default, too late here).
 */
export const ADMIN_LIMITS = Object.freeze({
  /** Open connections; past this, new ones are closed at accept. The status page keeps a few. */
  maxConnections: 64,
  /** From connect (or the end of the last response) to the end of the request headers. */
  headersTimeoutMs: 5_000,
  /** From the first byte to the end of the request body. */
  requestTimeoutMs: 10_000,
  /** An idle keep-alive connection between requests (the status page polls every second). */
  keepAliveTimeoutMs: 5_000,
  /** No byte either way, e.g. a client that stops reading its response. */
  idleTimeoutMs: 10_000,
  checkIntervalMs: 1_000,
  /** A write call's body (a weight is a few bytes). */
  maxBodyBytes: 4096,
  /** A larger body is still read and dropped up to this, so the 413 is seen instead of a reset. */
  maxDrainBytes: 1 << 20,
});

const BACKEND_ROUTE =
  /^\/api\/services\/([^/]+)\/backends\/([^/]+)\/(drain|enable|disable|weight)$/;
/** Distinct refused Host values logged at warn; past this, refusals are only answered. */
const MAX_WARNED_HOSTS = 32;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

/**
 * The admin server (node:http, loopback by default): Prometheus metrics, a
 * JSON API to read and change backend state, a health endpoint, reload, and
 * the live status page.
 */
export class AdminServer {
  private readonly server: Server;
  private readonly registry: Registry | null;
  /** The token's digest: tokens are compared as digests so neither content nor length leaks through timing. */
  private readonly tokenDigest: Buffer | null;
  private readonly allowedHosts: ReadonlySet<string>;
  private readonly warnedHosts = new Set<string>();

  constructor(
    private readonly lb: LoadBalancer,
    private readonly opts: AdminOptions,
  ) {
    this.registry = opts.cluster ? null : createRegistry(lb);
    this.tokenDigest = opts.token === null ? null : digest(opts.token);
    this.allowedHosts = new Set((opts.allowedHosts ?? []).map((h) => h.toLowerCase()));
    const l = ADMIN_LIMITS;
    this.server = createServer(
      {
        headersTimeout: l.headersTimeoutMs,
        requestTimeout: l.requestTimeoutMs,
        keepAliveTimeout: l.keepAliveTimeoutMs,
        connectionsCheckingInterval: l.checkIntervalMs,
      },
      (req, res) => {
        this.handle(req, res).catch((err: unknown) => this.fail(res, err));
      },
    );
    this.server.maxConnections = l.maxConnections;
    this.server.timeout = l.idleTimeoutMs;
    // No 'clientError' listener: Node then answers a malformed request 400, a slow one 408 and
    // oversized headers 431 before closing, and a client sees why instead of a bare reset.
  }

  start(): Promise<void> {
    const { host, port, address } = this.opts.listen;
    if (!isLoopback(host)) {
      this.opts.log.warn(
        { listen: address },
        'admin server bound to a non-loopback address: anyone who can reach it can change backends',
      );
    }
    return new Promise((resolve, reject) => {
      this.server.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          new LbError(
            'LB_ERR_LISTEN',
            `admin listen ${address}: ${err.code === 'EADDRINUSE' ? 'address already in use' : err.message}`,
          ),
        ),
      );
      this.server.listen(port, host, () => {
        this.server.removeAllListeners('error');
        this.server.on('error', (err) => this.opts.log.error({ err }, 'admin server error'));
        resolve();
      });
    });
  }

  address(): AddressInfo {
    return this.server.address() as AddressInfo;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.closeAllConnections();
      this.server.close(() => resolve());
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const host = this.checkHost(req);
    const path = requestPath(req.url);
    const method = req.method ?? 'GET';
    // HEAD is GET without the body; Node drops the body of a HEAD response and keeps its length.
    const read = method === 'GET' || method === 'HEAD';
    if (read && path === '/') return this.send(res, 200, STATUS_PAGE, 'text/html; charset=utf-8');
    if (read && path === '/metrics') {
      const m = this.opts.cluster
        ? await this.opts.cluster.metrics()
        : {
            body: await (this.registry as Registry).metrics(),
            contentType: (this.registry as Registry).contentType,
          };
      return this.send(res, 200, m.body, m.contentType);
    }
    if (read && path === '/api/services') return this.json(res, 200, await this.view());
    if (read && path === '/healthz') return this.healthz(res);
    if (path === '/api/reload') {
      if (method !== 'POST') throw new HttpError(405, 'use POST', { allow: 'POST' });
      await this.acceptWrite(req, host);
      if (!this.opts.reload)
        throw new HttpError(501, 'reload needs a config file (run from the command line)');
      try {
        return this.json(res, 200, { reloaded: true, ...(await this.opts.reload()) });
      } catch (err) {
        throw new HttpError(400, (err as Error).message);
      }
    }
    const m = BACKEND_ROUTE.exec(path);
    if (m)
      return this.backendAction(
        req,
        res,
        host,
        decodeSegment(m[1] as string),
        decodeSegment(m[2] as string),
        m[3] as string,
      );
    throw new HttpError(404, `no such endpoint: ${method} ${path}`);
  }

  private async backendAction(
    req: IncomingMessage,
    res: ServerResponse,
    host: string | null,
    svcName: string,
    addr: string,
    action: string,
  ): Promise<void> {
    const method = req.method ?? 'GET';
    const want = action === 'weight' ? 'PUT' : 'POST';
    if (method !== want) throw new HttpError(405, `use ${want}`, { allow: want });
    const body = await this.acceptWrite(req, host);
    const svc = this.lb.allServices.find((s) => s.name === svcName);
    if (!svc) throw new HttpError(404, `no service ${svcName}`);
    let b: Backend;
    try {
      if (action === 'drain') b = this.lb.drainBackend(svcName, addr);
      else if (action === 'enable') b = this.lb.enableBackend(svcName, addr);
      else if (action === 'disable') b = this.lb.disableBackend(svcName, addr);
      else b = this.lb.setWeight(svcName, addr, parseWeight(body));
    } catch (err) {
      if (err instanceof LbError && err.code === 'LB_ERR_UNKNOWN_BACKEND')
        throw new HttpError(404, err.message);
      if (err instanceof LbError && err.code === 'LB_ERR_INVALID_ARGUMENT')
        throw new HttpError(400, err.message);
      throw err;
    }
    this.opts.log.info({ service: svcName, backend: b.address, action }, 'admin: backend changed');
    let view: unknown = backendView(svc, b);
    if (this.opts.cluster) {
      // Traffic figures live in the workers: answer with the summed view.
      const all = (await this.view()) as { services: ServiceView[] };
      view = all.services
        .find((s) => s.name === svcName)
        ?.backends.find((x) => x.address === b.address);
    }
    this.json(res, 200, { service: svcName, backend: view });
  }

  private view(): Promise<unknown> {
    return this.opts.cluster
      ? this.opts.cluster.servicesView()
      : Promise.resolve(servicesView(this.lb));
  }

  private healthz(res: ServerResponse): void {
    const failing = this.lb.allServices.filter((s) => !s.backends.anyHealthy).map((s) => s.name);
    this.json(res, failing.length === 0 ? 200 : 503, { ok: failing.length === 0, failing });
  }

  /**
   * The Host header, lowercased, when it names this server; null when absent.
   * A DNS-rebinding page reaches us under its own name, so only names that
   * cannot be an attacker's pass: the listen address, the address the
   * connection came in on (for a wildcard listen), loopback names (any port:
   * an SSH tunnel's), and the operator's allowed_hosts. No browser omits Host,
   * so its absence (HTTP/1.0 health checkers) is not a rebinding.
   */
  private checkHost(req: IncomingMessage): string | null {
    const raw = req.headers.host;
    if (raw === undefined) return null;
    const value = raw.toLowerCase();
    if (this.allowedHosts.has(value)) return value;
    const h = splitHost(value);
    if (h) {
      const { host: listenHost } = this.opts.listen;
      const { localAddress, localPort } = req.socket;
      if (isLoopback(h.host)) return value;
      if (h.host === listenHost.toLowerCase() && h.port === this.address().port) return value;
      if (localAddress && h.host === unmapped(localAddress) && h.port === localPort) return value;
    }
    if (this.warnedHosts.size < MAX_WARNED_HOSTS && !this.warnedHosts.has(value)) {
      this.warnedHosts.add(value);
      this.opts.log.warn(
        { host: raw },
        'admin: refused a request for another Host (allowed_hosts)',
      );
    }
    throw new HttpError(
      403,
      `Host ${JSON.stringify(raw)} is not this admin server's name; add it to [admin] allowed_hosts`,
    );
  }

  /**
   * Checks a write call, cheapest refusal first, and returns its body. Without
   * a token a browser is the operator's credential, so a page from another
   * origin must not be able to act through it: its Origin is refused, and
   * requiring application/json means a plain form cannot send a write at all
   * (a cross-origin JSON fetch needs a CORS preflight, which is never granted).
   * A write without Origin is not from a browser (curl, scripts).
   */
  private async acceptWrite(req: IncomingMessage, host: string | null): Promise<string> {
    const origin = req.headers.origin;
    if (origin !== undefined && (host === null || origin.toLowerCase() !== `http://${host}`))
      throw new HttpError(403, `cross-origin write refused (Origin ${origin})`);
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    if (type !== 'application/json')
      throw new HttpError(415, 'write calls need Content-Type: application/json');
    this.authorize(req);
    return readBody(req);
  }

  private authorize(req: IncomingMessage): void {
    if (this.tokenDigest === null) return;
    // RFC 7235: the scheme is case-insensitive ("bearer" is as good as "Bearer").
    const m = /^bearer +(\S+)$/i.exec(req.headers.authorization ?? '');
    if (!timingSafeEqual(digest(m?.[1] ?? ''), this.tokenDigest))
      throw new HttpError(401, 'missing or wrong bearer token', { 'www-authenticate': 'Bearer' });
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    this.send(res, status, `${JSON.stringify(body)}\n`, 'application/json');
  }

  private send(
    res: ServerResponse,
    status: number,
    body: string,
    type: string,
    extra: Readonly<Record<string, string>> = {},
  ): void {
    res.writeHead(status, {
      ...extra,
      'content-type': type,
      'cache-control': 'no-store',
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
  }

  private fail(res: ServerResponse, err: unknown): void {
    const status = err instanceof HttpError ? err.status : 500;
    if (status === 500) this.opts.log.error({ err }, 'admin request failed');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const body = `${JSON.stringify({ error: (err as Error).message })}\n`;
    const headers = err instanceof HttpError ? err.headers : {};
    this.send(res, status, body, 'application/json', headers);
  }
}

/** The path of a request target (origin or absolute form); 400 when it does not parse. */
function requestPath(target: string | undefined): string {
  try {
    return new URL(target ?? '/', 'http://admin').pathname;
  } catch {
    throw new HttpError(400, 'bad request target');
  }
}

/** One percent-encoded path segment; 400 for bad encoding such as "%ff" or a lone "%". */
function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, `bad percent-encoding in ${JSON.stringify(segment)}`);
  }
}

/** "host", "host:port" or "[v6]:port" (lowercase) as host and port, the port 80 when absent. */
function splitHost(value: string): { host: string; port: number } | null {
  const m = /^(?:\[([0-9a-f:.]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/.exec(value);
  if (!m) return null;
  return { host: (m[1] ?? m[2]) as string, port: m[3] === undefined ? 80 : Number(m[3]) };
}

/** An IPv4 client of a dual-stack listener shows as "::ffff:a.b.c.d"; browsers write "a.b.c.d". */
function unmapped(address: string): string {
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : '';
  return isIPv4(v4) ? v4 : address.toLowerCase();
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/**
 * Reads a write call's body, up to maxBodyBytes. A larger one is refused 413,
 * but read to its end first (up to maxDrainBytes): closing a socket with
 * unread bytes sends a reset, and the client would see that, not the 413.
 */
function readBody(req: IncomingMessage): Promise<string> {
  const { maxBodyBytes, maxDrainBytes } = ADMIN_LIMITS;
  const tooLarge = (close: boolean): HttpError =>
    new HttpError(413, `body over ${maxBodyBytes} bytes`, close ? { connection: 'close' } : {});
  if (Number(req.headers['content-length'] ?? 0) > maxDrainBytes)
    return Promise.reject(tooLarge(true));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (d: Buffer) => {
      size += d.length;
      if (size <= maxBodyBytes) chunks.push(d);
      else if (size > maxDrainBytes) reject(tooLarge(true));
    });
    req.on('end', () =>
      size > maxBodyBytes ? reject(tooLarge(false)) : resolve(Buffer.concat(chunks).toString()),
    );
    req.on('error', reject);
    req.on('close', () => reject(new HttpError(400, 'request body cut short')));
  });
}

/** `{"weight": 3}` or a bare `3`; the value is checked by the one backend validator (BackendSet.setWeight). */
function parseWeight(body: string): number {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    throw new HttpError(400, 'body must be JSON: {"weight": N}');
  }
  return (typeof v === 'object' && v !== null ? (v as { weight?: unknown }).weight : v) as number;
}
