import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import type { Registry } from 'prom-client';
import { isLoopback } from '../config/address.js';
import { type AdminListen, isUnixListen, type UnixListen } from '../config/admin.js';
import { LbError } from '../errors.js';
import type { LoadBalancer, ReloadSummary } from '../load-balancer.js';
import type { Logger } from '../logger.js';
import { packageVersion } from '../version.js';
import {
  type AdminCluster,
  addBackend,
  BACKEND_ACTIONS,
  type BackendAction,
  backendAction,
  endSession,
  listSessions,
  pageParams,
  removeBackend,
  serviceOf,
} from './api.js';
import { configView } from './config-view.js';
import { infoRegistry, infoView } from './info.js';
import { createRegistry } from './metrics.js';
import { ReloadLog } from './reload-log.js';
import {
  ADMIN_LIMITS,
  decodeSegment,
  HttpError,
  RequestGuard,
  requestUrl,
} from './request-guard.js';
import { STATUS_PAGE } from './status-page.js';
import { backendView, type ServiceView, servicesView } from './views.js';

export type { AdminCluster } from './api.js';
export { ADMIN_LIMITS } from './request-guard.js';

export interface AdminOptions {
  /** "host:port", or a Unix socket (its file created with `mode`, removed at close). */
  listen: AdminListen;
  /** When set, write calls need `Authorization: Bearer <token>`. */
  token: string | null;
  /** When set, reads (/metrics, GET /api/*) need this token or `token`. */
  readToken?: string | null;
  /**
   * Host header values accepted besides the listen address and loopback names,
   * as a browser sends them: "lb.internal:9900", or "lb.internal" behind port 80.
   */
  allowedHosts?: readonly string[];
  /** Re-reads the config and applies it; rejects with the reason when the file is invalid. */
  reload: (() => Promise<ReloadSummary>) | null;
  /** Where every reload (SIGHUP's too) is recorded; one of its own when omitted. */
  reloads?: ReloadLog;
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

const BACKEND_ROUTE = /^\/api\/services\/([^/]+)\/backends\/([^/]+)(?:\/([a-z-]+))?$/;

import { STICK_ROUTE, stickRoute } from './stick.js';

const SESSIONS_ROUTE = /^\/api\/services\/([^/]+)\/sessions(?:\/([^/]+))?$/;

const LIFECYCLE_ROUTES: ReadonlySet<string> = new Set([
  '/api/drain',
  '/api/undrain',
  '/api/upgrade',
]);
/**
 * The admin server (node:http, loopback by default, or a Unix socket):
 * Prometheus metrics, a JSON API to read and change backends and sessions,
 * a health endpoint, reload, and the live status page.
 */
export class AdminServer {
  private readonly server: Server;
  private readonly registry: Registry | null;
  private readonly info: Registry;
  private readonly guard: RequestGuard;
  private readonly reloads: ReloadLog;
  private readonly reload: (() => Promise<ReloadSummary>) | null;
  private readonly version = packageVersion();

  constructor(
    private readonly lb: LoadBalancer,
    private readonly opts: AdminOptions,
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

  async start(): Promise<void> {
    const listen = this.opts.listen;
    if (isUnixListen(listen)) return this.startUnix(listen);
    if (!isLoopback(listen.host)) {
      this.opts.log.warn(
        { listen: listen.address },
        'admin server bound to a non-loopback address: anyone who can reach it can change backends',
      );
    }
    // An upgrade's new process (or systemd) may pass the admin socket in.
    const fd = this.opts.fd ?? null;
    await this.bind(listen.address, () =>
      fd === null ? this.server.listen(listen.port, listen.host) : this.server.listen({ fd }),
    );
  }

  /**
   * Binds the socket file with its mode already in place (a umask for the
   * bind, so no other user can connect in between), after removing a stale
   * file that nothing listens on any more.
   */
  private async startUnix(l: UnixListen): Promise<void> {
    if (await staleSocket(l.unix)) unlinkSync(l.unix);
    await this.bind(l.address, () => {
      const old = process.umask(0o777 & ~l.mode);
      try {
        this.server.listen(l.unix);
      } finally {
        process.umask(old);
      }
    });
    chmodSync(l.unix, l.mode);
  }

  private bind(address: string, listen: () => void): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          new LbError(
            'LB_ERR_LISTEN',
            `admin listen ${address}: ${err.code === 'EADDRINUSE' ? 'address already in use' : err.message}`,
          ),
        ),
      );
      this.server.once('listening', () => {
        this.server.removeAllListeners('error');
        this.server.on('error', (err) => this.opts.log.error({ err }, 'admin server error'));
        resolve();
      });
      listen();
    });
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

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const host = this.guard.checkHost(req);
    const url = requestUrl(req.url);
    const path = url.pathname;
    const method = req.method ?? 'GET';
    // HEAD is GET without the body; Node drops the body of a HEAD response and keeps its length.
    const read = method === 'GET' || method === 'HEAD';
    // The page holds no data (it asks for a token when reads need one); /healthz is for checkers.
    if (read && path === '/') return this.send(res, 200, STATUS_PAGE, 'text/html; charset=utf-8');
    if (read && path === '/healthz') return this.healthz(res);
    if (read && path === '/livez') return this.json(res, 200, { ok: true, pid: process.pid });
    if (read && path === '/readyz') return this.readyz(res);
    if (LIFECYCLE_ROUTES.has(path)) return this.lifecycleAction(req, res, host, path);
    if (read) this.guard.acceptRead(req);
    if (read && path === '/metrics') return this.metrics(res);
    if (read && path === '/api/services') return this.json(res, 200, await this.view());
    if (read && path === '/api/info') return this.json(res, 200, this.infoView());
    if (read && path === '/api/config') return this.json(res, 200, configView(this.lb.config));
    if (path === '/api/reload') {
      if (method !== 'POST') throw new HttpError(405, 'use POST', { allow: 'POST' });
      await this.guard.acceptWrite(req, host);
      if (!this.reload)
        throw new HttpError(501, 'reload needs a config file (run from the command line)');
      try {
        return this.json(res, 200, { reloaded: true, ...(await this.reload()) });
      } catch (err) {
        throw new HttpError(400, (err as Error).message);
      }
    }
    const b = BACKEND_ROUTE.exec(path);
    if (b) {
      const svc = decodeSegment(b[1] as string);
      const addr = decodeSegment(b[2] as string);
      return this.backendRoute(req, res, host, svc, addr, b[3] ?? null);
    }
    const s = SESSIONS_ROUTE.exec(path);
    if (s) {
      const svc = decodeSegment(s[1] as string);
      const cluster = this.opts.cluster ?? null;
      if (s[2] === undefined) {
        if (!read) throw new HttpError(405, 'use GET', { allow: 'GET' });
        return this.json(res, 200, await listSessions(this.lb, cluster, svc, pageParams(url)));
      }
      if (method !== 'DELETE') throw new HttpError(405, 'use DELETE', { allow: 'DELETE' });
      await this.guard.acceptWrite(req, host);
      const id = decodeSegment(s[2]);
      await endSession(this.lb, cluster, svc, id);
      this.opts.log.info({ service: svc, session: id }, 'admin: session ended');
      return this.json(res, 200, { service: svc, ended: id });
    }
    // issue 26: the stick table of a service.
    const st = STICK_ROUTE.exec(path);
    if (st) {
      if (!read && method !== 'DELETE')
        throw new HttpError(405, 'use GET or DELETE', { allow: 'GET, DELETE' });
      if (!read) await this.guard.acceptWrite(req, host);
      const svc = decodeSegment(st[1] as string);
      const key = st[2] === undefined ? null : decodeSegment(st[2]);
      const answer = await stickRoute(this.lb, this.opts.cluster ?? null, svc, key, !read, url);
      if (!read) this.opts.log.info({ service: svc, key }, 'admin: stick entries removed');
      return this.json(res, 200, answer);
    }
    throw new HttpError(404, `no such endpoint: ${method} ${path}`);
  }

  /** …/backends/ADDRESS (POST adds, DELETE removes) and …/backends/ADDRESS/ACTION. */
  private async backendRoute(
    req: IncomingMessage,
    res: ServerResponse,
    host: string | null,
    svcName: string,
    addr: string,
    action: string | null,
  ): Promise<void> {
    const method = req.method ?? 'GET';
    if (action === null) {
      if (method !== 'POST' && method !== 'DELETE')
        throw new HttpError(405, 'use POST (add) or DELETE (remove)', { allow: 'POST, DELETE' });
      const body = await this.guard.acceptWrite(req, host);
      if (method === 'DELETE') {
        removeBackend(this.lb, svcName, addr);
        this.opts.log.info({ service: svcName, backend: addr }, 'admin: backend removed');
        return this.json(res, 200, { service: svcName, removed: addr });
      }
      const added = addBackend(this.lb, svcName, addr, body);
      this.opts.log.info({ service: svcName, backend: added.address }, 'admin: backend added');
      return this.json(res, 201, {
        service: svcName,
        backend: await this.backendJson(svcName, added.address),
      });
    }
    if (!(BACKEND_ACTIONS as readonly string[]).includes(action))
      throw new HttpError(404, `no such backend action: ${action} (${BACKEND_ACTIONS.join(', ')})`);
    const want = action === 'weight' ? 'PUT' : 'POST';
    if (method !== want) throw new HttpError(405, `use ${want}`, { allow: want });
    const body = await this.guard.acceptWrite(req, host);
    serviceOf(this.lb, svcName);
    const b = backendAction(this.lb, svcName, addr, action as BackendAction, body);
    this.opts.log.info({ service: svcName, backend: b.address, action }, 'admin: backend changed');
    this.json(res, 200, { service: svcName, backend: await this.backendJson(svcName, b.address) });
  }

  /** A backend as /api/services shows it; with workers, their traffic summed. */
  private async backendJson(svcName: string, address: string): Promise<unknown> {
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

  private view(): Promise<unknown> {
    return this.opts.cluster
      ? this.opts.cluster.servicesView()
      : Promise.resolve(servicesView(this.lb));
  }

  private infoView(): unknown {
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
  private async metrics(res: ServerResponse): Promise<void> {
    const m = this.opts.cluster
      ? await this.opts.cluster.metrics()
      : {
          body: await (this.registry as Registry).metrics(),
          contentType: (this.registry as Registry).contentType,
        };
    this.send(res, 200, m.body + (await this.info.metrics()), m.contentType);
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

/** True when `path` is a socket file nobody accepts on (a crashed run's); false when absent. */
function staleSocket(path: string): Promise<boolean> {
  try {
    if (!lstatSync(path).isSocket()) return Promise.resolve(false);
  } catch {
    return Promise.resolve(false);
  }
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}
