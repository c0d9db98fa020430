import type { IncomingMessage, ServerResponse } from 'node:http';
import { LbError } from '../errors.js';
import type { LoadBalancer, ReloadSummary } from '../load-balancer.js';
import {
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
import type { AdminOptions } from './options.js';
import { decodeSegment, HttpError } from './request-guard.js';
import { refuseResolvedTwin } from './resolved-twin.js';
import { STATUS_PAGE } from './status-page.js';
import { stickRoute } from './stick.js';

/**
 * Who may call a route, checked before it runs (as HAProxy's CLI keyword
 * rows carry their access level):
 * - open: anyone who reaches the server (the page, which holds no data, and the checkers' endpoints);
 * - upgrade: the process's lifecycle (drain, undrain, upgrade): the write token;
 * - read: the read token or the write token, when a read token is set;
 * - write: the write token; the request body is read (JSON only) before the route runs.
 */
export type Access = 'open' | 'upgrade' | 'read' | 'write';

/** What a route reaches of the admin server (server.ts's AdminServer). */
export interface AdminCall {
  readonly lb: LoadBalancer;
  readonly opts: AdminOptions;
  readonly reload: (() => Promise<ReloadSummary>) | null;
  json(res: ServerResponse, status: number, body: unknown): void;
  send(res: ServerResponse, status: number, body: string, type: string): void;
  view(): Promise<unknown>;
  infoView(): unknown;
  metrics(res: ServerResponse): Promise<void>;
  backendJson(svcName: string, address: string): Promise<unknown>;
}

/** One request as a route sees it: `params` are the path's decoded captures, `body` what a write sent. */
export interface RouteCall {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  readonly params: readonly string[];
  readonly body: string;
}

export interface Route {
  readonly path: string | RegExp;
  /** The method it answers (GET: HEAD too); '*': the route checks the method itself. */
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE' | '*';
  readonly access: Access;
  /** Another method: a 405 naming this one, or (reads) no match, so the next route or a 404 answers. */
  readonly otherMethods: '405' | 'next';
  readonly run: (a: AdminCall, c: RouteCall) => Promise<void> | void;
}

/** The path's captures, decoded; null when it does not match. */
export function matchRoute(route: Route, path: string): string[] | null {
  if (typeof route.path === 'string') return route.path === path ? [] : null;
  const m = route.path.exec(path);
  return m ? m.slice(1).map((p) => (p === undefined ? '' : decodeSegment(p))) : null;
}

/** A page anyone may read (the status page, the probes): GET and HEAD; another method falls through to the next route or a 404. */
function openPage(path: string, run: Route['run']): Route {
  return { path, method: 'GET', access: 'open', otherMethods: 'next', run };
}

const SERVICE = '/api/services/([^/]+)';

/** Names of services whose backends are all down (healthz and readyz fail on them). */
function failing(a: AdminCall): string[] {
  return a.lb.allServices.filter((s) => !s.backends.anyHealthy).map((s) => s.name);
}

async function lifecycle(a: AdminCall, c: RouteCall, action: 'drain' | 'undrain'): Promise<void> {
  const lc = a.opts.lifecycle;
  if (!lc) throw new HttpError(501, 'needs the command line (blitz-lb run)');
  if (action === 'drain') lc.drain();
  else lc.undrain();
  a.opts.log.info({ action }, 'admin: lifecycle changed');
  a.json(c.res, 200, { draining: lc.draining, ready: lc.notReadyBecause() === null });
}

async function upgrade(a: AdminCall, c: RouteCall): Promise<void> {
  const lc = a.opts.lifecycle;
  if (!lc) throw new HttpError(501, 'needs the command line (blitz-lb run)');
  // The upgrade is bounded by upgrade_timeout, which may exceed the admin's idle timeout.
  c.req.socket.setTimeout(0);
  try {
    a.json(c.res, 200, { upgraded: true, pid: await lc.upgrade() });
  } catch (err) {
    if (err instanceof LbError && err.code === 'LB_ERR_STATE')
      throw new HttpError(409, err.message);
    throw new HttpError(
      500,
      `upgrade failed, this process keeps serving: ${(err as Error).message}`,
    );
  }
}

async function reload(a: AdminCall, c: RouteCall): Promise<void> {
  if (!a.reload) throw new HttpError(501, 'reload needs a config file (run from the command line)');
  try {
    a.json(c.res, 200, { reloaded: true, ...(await a.reload()) });
  } catch (err) {
    throw new HttpError(400, (err as Error).message);
  }
}

/** …/backends/ADDRESS: POST adds, DELETE removes. */
async function backend(a: AdminCall, c: RouteCall, method: string): Promise<void> {
  const [svcName, addr] = c.params as [string, string];
  if (method === 'DELETE') {
    removeBackend(a.lb, svcName, addr);
    a.opts.log.info({ service: svcName, backend: addr }, 'admin: backend removed');
    return a.json(c.res, 200, { service: svcName, removed: addr });
  }
  await refuseResolvedTwin(addr, (x) => a.lb.service(svcName).backends.get(x) !== undefined);
  const added = addBackend(a.lb, svcName, addr, c.body);
  a.opts.log.info({ service: svcName, backend: added.address }, 'admin: backend added');
  a.json(c.res, 201, { service: svcName, backend: await a.backendJson(svcName, added.address) });
}

/** …/stick[/KEY]: a service's stick entries (every worker's), or removing them. */
async function stick(a: AdminCall, c: RouteCall, clear: boolean): Promise<void> {
  const [svc, key = ''] = c.params as [string, string?];
  const k = key === '' ? null : key;
  const answer = await stickRoute(a.lb, a.opts.cluster ?? null, svc, k, clear, c.url);
  if (clear) a.opts.log.info({ service: svc, key: k }, 'admin: stick entries removed');
  a.json(c.res, 200, answer);
}

/** …/backends/ADDRESS/ACTION: weight is a PUT, the others POSTs. */
async function backendActionRoute(a: AdminCall, c: RouteCall, body: string): Promise<void> {
  const [svcName, addr, action] = c.params as [string, string, BackendAction];
  serviceOf(a.lb, svcName);
  const b = backendAction(a.lb, svcName, addr, action, body);
  a.opts.log.info({ service: svcName, backend: b.address, action }, 'admin: backend changed');
  a.json(c.res, 200, { service: svcName, backend: await a.backendJson(svcName, b.address) });
}

/**
 * Every endpoint, in the order they are tried: the open rows and the
 * lifecycle first (neither needs the read token), then reads, then writes.
 */
export const ROUTES: readonly Route[] = [
  openPage('/', (a, c) => a.send(c.res, 200, STATUS_PAGE, 'text/html; charset=utf-8')),
  openPage('/healthz', (a, c) => {
    const f = failing(a);
    a.json(c.res, f.length === 0 ? 200 : 503, { ok: f.length === 0, failing: f });
  }),
  openPage('/livez', (a, c) => a.json(c.res, 200, { ok: true, pid: process.pid })),
  // 200 while this process accepts, is not draining and every service has a healthy backend.
  openPage('/readyz', (a, c) => {
    const f = failing(a);
    const why = a.opts.lifecycle?.notReadyBecause() ?? null;
    const ready = why === null && f.length === 0;
    a.json(c.res, ready ? 200 : 503, { ready, ...(why ? { reason: why } : {}), failing: f });
  }),
  {
    path: '/api/drain',
    method: 'POST',
    access: 'upgrade',
    otherMethods: '405',
    run: (a, c) => lifecycle(a, c, 'drain'),
  },
  {
    path: '/api/undrain',
    method: 'POST',
    access: 'upgrade',
    otherMethods: '405',
    run: (a, c) => lifecycle(a, c, 'undrain'),
  },
  { path: '/api/upgrade', method: 'POST', access: 'upgrade', otherMethods: '405', run: upgrade },
  {
    path: '/metrics',
    method: 'GET',
    access: 'read',
    otherMethods: 'next',
    run: (a, c) => a.metrics(c.res),
  },
  {
    path: '/api/services',
    method: 'GET',
    access: 'read',
    otherMethods: 'next',
    run: async (a, c) => a.json(c.res, 200, await a.view()),
  },
  {
    path: '/api/info',
    method: 'GET',
    access: 'read',
    otherMethods: 'next',
    run: (a, c) => a.json(c.res, 200, a.infoView()),
  },
  {
    path: '/api/config',
    method: 'GET',
    access: 'read',
    otherMethods: 'next',
    run: (a, c) => a.json(c.res, 200, configView(a.lb.config)),
  },
  {
    path: new RegExp(`^${SERVICE}/sessions$`),
    method: 'GET',
    access: 'read',
    otherMethods: '405',
    run: async (a, c) =>
      a.json(
        c.res,
        200,
        await listSessions(a.lb, a.opts.cluster ?? null, c.params[0] as string, pageParams(c.url)),
      ),
  },
  {
    path: new RegExp(`^${SERVICE}/stick(?:/([^/]+))?$`),
    method: 'GET',
    access: 'read',
    otherMethods: 'next',
    run: (a, c) => stick(a, c, false),
  },
  { path: '/api/reload', method: 'POST', access: 'write', otherMethods: '405', run: reload },
  {
    path: new RegExp(`^${SERVICE}/backends/([^/]+)$`),
    method: '*',
    access: 'write',
    otherMethods: '405',
    run: (a, c) => backend(a, c, c.req.method ?? 'GET'),
  },
  {
    path: new RegExp(`^${SERVICE}/backends/([^/]+)/([a-z-]+)$`),
    method: '*',
    access: 'write',
    otherMethods: '405',
    run: (a, c) => backendActionRoute(a, c, c.body),
  },
  {
    path: new RegExp(`^${SERVICE}/sessions/([^/]+)$`),
    method: 'DELETE',
    access: 'write',
    otherMethods: '405',
    run: async (a, c) => {
      const [svc, id] = c.params as [string, string];
      await endSession(a.lb, a.opts.cluster ?? null, svc, id);
      a.opts.log.info({ service: svc, session: id }, 'admin: session ended');
      a.json(c.res, 200, { service: svc, ended: id });
    },
  },
  {
    path: new RegExp(`^${SERVICE}/stick(?:/([^/]+))?$`),
    method: 'DELETE',
    access: 'write',
    otherMethods: '405',
    run: (a, c) => stick(a, c, true),
  },
];

/**
 * The method check of a '*' row, before its access is checked: the backend
 * rows answer different methods per address or action (and an unknown action
 * is a 404 before anything else).
 */
export function checkStarMethod(route: Route, params: readonly string[], method: string): void {
  if (route.method !== '*') return;
  if (params.length === 2) {
    if (method !== 'POST' && method !== 'DELETE')
      throw new HttpError(405, 'use POST (add) or DELETE (remove)', { allow: 'POST, DELETE' });
    return;
  }
  const action = params[2] as string;
  if (!(BACKEND_ACTIONS as readonly string[]).includes(action))
    throw new HttpError(404, `no such backend action: ${action} (${BACKEND_ACTIONS.join(', ')})`);
  const want = action === 'weight' ? 'PUT' : 'POST';
  if (method !== want) throw new HttpError(405, `use ${want}`, { allow: want });
}
