import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Backend } from '../backend/backend.js';
import { type HostPort, isLoopback } from '../config/address.js';
import { LbError } from '../errors.js';
import type { LoadBalancer, ReloadSummary } from '../load-balancer.js';
import type { Logger } from '../logger.js';
import { createRegistry } from './metrics.js';
import {
  ADMIN_LIMITS,
  decodeSegment,
  HttpError,
  RequestGuard,
  requestPath,
} from './request-guard.js';

export { ADMIN_LIMITS } from './request-guard.js';

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
  /** /readyz, drain and upgrade (lifecycle/lifecycle.ts); absent: /readyz checks backends only. */
  lifecycle?: AdminLifecycle | null;
  /** A listening socket passed to the process (an upgrade's) to serve on instead of binding `listen`. */
  fd?: number | null;
}

/** What the lifecycle routes need (see lifecycle/lifecycle.ts and cli.ts). */
export interface AdminLifecycle {
  /** Why /readyz says 503 (draining, stopping, handed over); null: nothing stops it. */
  notReadyBecause(): string | null;
  readonly draining: boolean;
  drain(): void;
  undrain(): void;
  /** Resolves with the new process's PID once it serves (this one then retires); LB_ERR_STATE when one cannot start now. */
  upgrade(): Promise<number>;
}

/** What the admin server needs from a cluster primary. Backend actions still go to the LoadBalancer. */
export interface AdminCluster {
  servicesView(): Promise<unknown>;
  metrics(): Promise<{ body: string; contentType: string }>;
}

const LIFECYCLE_ROUTES: ReadonlySet<string> = new Set([
  '/api/drain',
  '/api/undrain',
  '/api/upgrade',
]);
const BACKEND_ROUTE =
  /^\/api\/services\/([^/]+)\/backends\/([^/]+)\/(drain|enable|disable|weight)$/;
/**
 * The admin server (node:http, loopback by default): Prometheus metrics, a
 * JSON API to read and change backend state, a health endpoint, reload, and
 * the live status page.
 */
export class AdminServer {
  private readonly server: Server;
  private readonly registry: Registry | null;
  private readonly guard: RequestGuard;

  constructor(
    private readonly lb: LoadBalancer,
    private readonly opts: AdminOptions,
  ) {
    this.registry = opts.cluster ? null : createRegistry(lb);
    this.guard = new RequestGuard(
      opts.listen,
      opts.token,
      opts.allowedHosts ?? [],
      () => this.address().port,
      opts.log,
    );
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
      const fd = this.opts.fd ?? null;
      const where = fd === null ? { port, host } : { fd };
      this.server.listen(where, () => {
        this.server.removeAllListeners('error');
        this.server.on('error', (err) => this.opts.log.error({ err }, 'admin server error'));
        resolve();
      });
    });
  }

  address(): AddressInfo {
    return this.server.address() as AddressInfo;
  }

  /** The listening server, for an upgrade to hand its socket to the new process. */
  get listeningServer(): Server {
    return this.server;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.closeAllConnections();
      this.server.close(() => resolve());
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const host = this.guard.checkHost(req);
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
    if (read && path === '/livez') return this.json(res, 200, { ok: true, pid: process.pid });
    if (read && path === '/readyz') return this.readyz(res);
    if (LIFECYCLE_ROUTES.has(path)) return this.lifecycleAction(req, res, host, path);
    if (path === '/api/reload') {
      if (method !== 'POST') throw new HttpError(405, 'use POST', { allow: 'POST' });
      await this.guard.acceptWrite(req, host);
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
    const body = await this.guard.acceptWrite(req, host);
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

  /** 200 while this process accepts, is not draining and every service has a healthy backend. */
  private readyz(res: ServerResponse): void {
    const failing = this.lb.allServices.filter((s) => !s.backends.anyHealthy).map((s) => s.name);
    const why = this.opts.lifecycle?.notReadyBecause() ?? null;
    const ready = why === null && failing.length === 0;
    this.json(res, ready ? 200 : 503, { ready, ...(why ? { reason: why } : {}), failing });
  }

  private async lifecycleAction(
    req: IncomingMessage,
    res: ServerResponse,
    host: string | null,
    path: string,
  ): Promise<void> {
    if (req.method !== 'POST') throw new HttpError(405, 'use POST', { allow: 'POST' });
    await this.guard.acceptWrite(req, host);
    const lc = this.opts.lifecycle;
    if (!lc) throw new HttpError(501, 'needs the command line (blitz-lb run)');
    if (path === '/api/drain' || path === '/api/undrain') {
      if (path === '/api/drain') lc.drain();
      else lc.undrain();
      this.opts.log.info({ action: path.slice(5) }, 'admin: lifecycle changed');
      return this.json(res, 200, { draining: lc.draining, ready: lc.notReadyBecause() === null });
    }
    // The upgrade is bounded by upgrade_timeout, which may exceed the admin's idle timeout.
    req.socket.setTimeout(0);
    try {
      return this.json(res, 200, { upgraded: true, pid: await lc.upgrade() });
    } catch (err) {
      if (err instanceof LbError && err.code === 'LB_ERR_STATE')
        throw new HttpError(409, err.message);
      throw new HttpError(
        500,
        `upgrade failed, this process keeps serving: ${(err as Error).message}`,
      );
    }
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
