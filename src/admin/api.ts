import type { Backend } from '../backend/backend.js';
import type { SessionQuery } from '../cluster/messages.js';
import type { WorkerStatus } from '../cluster/views.js';
import { LbError } from '../errors.js';
import type { LoadBalancer } from '../load-balancer.js';
import type { Service } from '../service.js';
import { backendFromBody } from './backend-body.js';
import { HttpError } from './request-guard.js';
import {
  MAX_PAGE,
  parseCursor,
  type SessionPage,
  type SessionView,
  sessionQuery,
} from './sessions.js';

/** What the admin server needs from a cluster primary. Backend actions still go to the LoadBalancer. */
export interface AdminCluster {
  servicesView(): Promise<unknown>;
  metrics(): Promise<{ body: string; contentType: string }>;
  /** A session query to one worker (its slot), or to every worker that is up (null). */
  sessions(q: SessionQuery, worker: number | null): Promise<{ worker: number; answer: unknown }[]>;
  /** The worker slots and their state. */
  status(): WorkerStatus[];
}

/** The backend actions: POST …/backends/ADDRESS/ACTION (PUT for weight). */
export const BACKEND_ACTIONS = [
  'drain',
  'enable',
  'disable',
  'weight',
  'force-up',
  'force-down',
  'pause-checks',
  'resume-checks',
] as const;
export type BackendAction = (typeof BACKEND_ACTIONS)[number];

/** LbError codes as HTTP answers; anything else is the server's fault (500). */
function asHttp(err: unknown): never {
  if (err instanceof LbError) {
    if (err.code === 'LB_ERR_UNKNOWN_BACKEND' || err.code === 'LB_ERR_UNKNOWN_SERVICE')
      throw new HttpError(404, err.message);
    if (err.code === 'LB_ERR_INVALID_ARGUMENT') throw new HttpError(400, err.message);
    if (err.code === 'LB_ERR_DUPLICATE_BACKEND') throw new HttpError(409, err.message);
  }
  throw err;
}

export function serviceOf(lb: LoadBalancer, name: string): Service {
  try {
    return lb.service(name);
  } catch (err) {
    return asHttp(err);
  }
}

/** Applies one backend action; the body is the request's (a weight for `weight`). */
export function backendAction(
  lb: LoadBalancer,
  svc: string,
  addr: string,
  action: BackendAction,
  body: string,
): Backend {
  try {
    switch (action) {
      case 'drain':
        return lb.drainBackend(svc, addr);
      case 'enable':
        return lb.enableBackend(svc, addr);
      case 'disable':
        return lb.disableBackend(svc, addr);
      case 'weight':
        return lb.setWeight(svc, addr, parseWeight(body));
      case 'force-up':
      case 'force-down':
        return lb.forceHealth(svc, addr, action === 'force-up');
      case 'pause-checks':
      case 'resume-checks':
        return lb.pauseChecks(svc, addr, action === 'pause-checks');
    }
  } catch (err) {
    return asHttp(err);
  }
}

/** POST /api/services/NAME/backends/ADDRESS: a new backend, checked as the file's are. */
export function addBackend(lb: LoadBalancer, svc: string, addr: string, body: string): Backend {
  const s = serviceOf(lb, svc);
  const cfg = backendFromBody(addr, body);
  try {
    return s.addBackend(cfg);
  } catch (err) {
    return asHttp(err);
  }
}

/** DELETE /api/services/NAME/backends/ADDRESS: no new sessions; open ones run to their end. */
export function removeBackend(lb: LoadBalancer, svc: string, addr: string): void {
  try {
    lb.removeBackend(svc, addr);
  } catch (err) {
    asHttp(err);
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

/** ?limit=&offset=&after= of a session list: a page of at most MAX_PAGE. */
export function pageParams(url: URL): {
  limit: number;
  offset: number;
  after: { worker: number; id: number };
} {
  const num = (name: string, dflt: number, max: number): number => {
    const v = url.searchParams.get(name);
    if (v === null) return dflt;
    if (!/^\d{1,9}$/.test(v) || Number(v) > max)
      throw new HttpError(400, `${name} must be a whole number from 0 to ${max}`);
    return Number(v);
  };
  const after = parseCursor(url.searchParams.get('after'));
  if (!after)
    throw new HttpError(400, 'after must be a session id from a previous page ("17" or "2.17")');
  return { limit: num('limit', 100, MAX_PAGE), offset: num('offset', 0, 1_000_000), after };
}

/**
 * A page of a service's open sessions, oldest first (worker by worker with
 * workers), and the cursor of the next page (null: this was the last).
 */
export async function listSessions(
  lb: LoadBalancer,
  cluster: AdminCluster | null,
  service: string,
  page: ReturnType<typeof pageParams>,
): Promise<{ sessions: SessionView[]; total: number; next: string | null }> {
  serviceOf(lb, service);
  const want = page.offset + page.limit + 1;
  const parts: { worker: number; page: SessionPage }[] = [];
  if (!cluster) {
    const q: SessionQuery = { op: 'list', service, after: page.after.id, limit: want };
    parts.push({ worker: 0, page: sessionQuery(lb, q) as SessionPage });
  } else {
    // Every worker that is up, at once: each from the cursor's id if it is the cursor's worker.
    const up = cluster.status().filter((w) => w.state === 'up');
    const answers = await Promise.all(
      up.map((w) => {
        const after = w.worker === page.after.worker ? page.after.id : 0;
        return cluster.sessions({ op: 'list', service, after, limit: want }, w.worker);
      }),
    );
    for (const a of answers.flat().sort((x, y) => x.worker - y.worker)) {
      const p = a.answer as SessionPage;
      // Workers before the cursor's were listed on earlier pages: only their totals count.
      parts.push({
        worker: a.worker,
        page: a.worker < page.after.worker ? { ...p, sessions: [] } : p,
      });
    }
  }
  const all = parts.flatMap((p) => p.page.sessions);
  const total = parts.reduce((n, p) => n + p.page.total, 0);
  const sessions = all.slice(page.offset, page.offset + page.limit);
  const more = all.length > page.offset + page.limit;
  return { sessions, total, next: more ? (sessions[sessions.length - 1]?.id ?? null) : null };
}

/** DELETE /api/services/NAME/sessions/ID: ends it now (both legs reset), as a disable would. */
export async function endSession(
  lb: LoadBalancer,
  cluster: AdminCluster | null,
  service: string,
  idText: string,
): Promise<void> {
  serviceOf(lb, service);
  const c = parseCursor(idText);
  if (!c || c.id === 0 || (cluster === null) !== (c.worker === 0))
    throw new HttpError(400, `bad session id ${JSON.stringify(idText)}`);
  let ended = false;
  if (!cluster) ended = lb.endSession(service, c.id);
  else {
    const r = await cluster.sessions({ op: 'end', service, id: c.id }, c.worker);
    ended = (r[0]?.answer as { ended?: boolean } | undefined)?.ended === true;
  }
  if (!ended) throw new HttpError(404, `no open session ${idText} in ${service}`);
}
