import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { LoadBalancer, ReloadSummary } from '../load-balancer.js';
import { packageVersion } from '../version.js';
import { bindAdmin } from './bind.js';
import { infoRegistry, infoView } from './info.js';
import { createRegistry } from './metrics.js';
import type { AdminOptions } from './options.js';
import { ReloadLog } from './reload-log.js';
import { ADMIN_LIMITS, HttpError, RequestGuard, requestUrl } from './request-guard.js';
import { type AdminCall, checkStarMethod, matchRoute, ROUTES } from './routes.js';
import { backendView, type ServiceView, servicesView } from './views.js';

export type { AdminCluster } from './api.js';
export type { AdminLifecycle, AdminOptions } from './options.js';
export { ADMIN_LIMITS } from './request-guard.js';

/**
 * The admin server (node:http, loopback by default, or a Unix socket):
 * Prometheus metrics, a JSON API to read and change backends and sessions,
 * a health endpoint, reload, and the live status page.
 */
export class AdminServer implements AdminCall {
  private readonly server: Server;
  private readonly registry: Registry | null;
  private readonly info: Registry;
  private readonly guard: RequestGuard;
  private readonly reloads: ReloadLog;
  readonly reload: (() => Promise<ReloadSummary>) | null;
  private readonly version = packageVersion();

  constructor(
    readonly lb: LoadBalancer,
    readonly opts: AdminOptions,
  ) {
    this.registry = opts.cluster ? null : createRegistry(lb);
    this.reloads = opts.reloads ?? new ReloadLog();
    // Reloads made here are recorded by the caller's log when it gave one (it wrapped its own).
    this.reload = opts.reload && !opts.reloads ? this.reloads.track(opts.reload) : opts.reload;
    this.info = infoRegistry(this.version, this.reloads.last, opts.cluster != null);
    this.guard = new RequestGuard(
      opts.listen,
      opts.token,
      opts.allowedHosts ?? [],
      () => this.address().port,
      opts.log,
      opts.readToken ?? null,
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
    return bindAdmin(this.server, this.opts.listen, this.opts.fd ?? null, this.opts.log);
  }

  /** The bound TCP address (port 0 for a Unix socket). */
  address(): AddressInfo {
    const a = this.server.address();
    return typeof a === 'object' && a !== null
      ? a
      : { address: String(a), family: 'unix', port: 0 };
  }

  /** The listening server, for an upgrade to hand its socket to the new process. */
  get listeningServer(): Server {
    return this.server;
  }

  /** Closes every connection; a Unix socket's file is removed (Node unlinks it on close). */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.closeAllConnections();
      this.server.close(() => resolve());
    });
  }

  /**
   * Runs the first route of ROUTES (admin/routes.ts) whose path matches:
   * its access is checked first (read or write token), a method it does not
   * answer is a 405 naming the one it does. Every read past the open and
   * lifecycle rows needs the read token, even one that ends in a 404.
   */
  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const host = this.guard.checkHost(req);
    const url = requestUrl(req.url);
    const path = url.pathname;
    const method = req.method ?? 'GET';
    // HEAD is GET without the body; Node drops the body of a HEAD response and keeps its length.
    const read = method === 'GET' || method === 'HEAD';
    let readChecked = false;
    for (const route of ROUTES) {
      if (read && !readChecked && (route.access === 'read' || route.access === 'write')) {
        this.guard.acceptRead(req);
        readChecked = true;
      }
      const params = matchRoute(route, path);
      if (params === null) continue;
      checkStarMethod(route, params, method);
      const allowed =
        route.method === '*' || (route.method === 'GET' ? read : method === route.method);
      if (!allowed) {
        if (route.otherMethods === 'next') continue;
        throw new HttpError(405, `use ${route.method}`, { allow: route.method });
      }
      const body =
        route.access === 'write' || route.access === 'upgrade'
          ? await this.guard.acceptWrite(req, host)
          : '';
      return route.run(this, { req, res, url, params, body });
    }
    throw new HttpError(404, `no such endpoint: ${method} ${path}`);
  }

  /** A backend as /api/services shows it; with workers, their traffic summed. */
  async backendJson(svcName: string, address: string): Promise<unknown> {
    if (!this.opts.cluster) {
      const svc = this.lb.service(svcName);
      const b = svc.backends.get(address);
      return b ? backendView(svc, b) : null;
    }
    const all = (await this.view()) as { services: ServiceView[] };
    return all.services
      .find((s) => s.name === svcName)
      ?.backends.find((x) => x.address === address);
  }

  view(): Promise<unknown> {
    return this.opts.cluster
      ? this.opts.cluster.servicesView()
      : Promise.resolve(servicesView(this.lb));
  }

  infoView(): unknown {
    return infoView({
      version: this.version,
      lb: this.lb,
      reloads: this.reloads.last,
      workers: this.opts.cluster?.status() ?? null,
      admin: this.opts.listen.address,
      readToken: (this.opts.readToken ?? null) !== null,
      token: this.opts.token !== null,
    });
  }

  /** The balancer's metrics (summed over workers), then this process's build and reload facts. */
  async metrics(res: ServerResponse): Promise<void> {
    const m = this.opts.cluster
      ? await this.opts.cluster.metrics()
      : {
          body: await (this.registry as Registry).metrics(),
          contentType: (this.registry as Registry).contentType,
        };
    this.send(res, 200, m.body + (await this.info.metrics()), m.contentType);
  }

  json(res: ServerResponse, status: number, body: unknown): void {
    this.send(res, status, `${JSON.stringify(body)}\n`, 'application/json');
  }

  send(
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
