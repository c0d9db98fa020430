import type { SessionQuery } from '../cluster/messages.js';
import type { LoadBalancer } from '../load-balancer.js';
import type { AdminCluster } from './api.js';
import { serviceOf } from './api.js';
import { HttpError } from './request-guard.js';

/** GET/DELETE /api/services/NAME/stick[/KEY] (issue 26). */
export const STICK_ROUTE = /^\/api\/services\/([^/]+)\/stick(?:\/([^/]+))?$/;

/** One stick entry as the API shows it. */
export interface StickView {
  key: string;
  backend: string;
  /** ms since the key was last used (or written). */
  idleMs: number;
  /** ms until it is forgotten unless used again. */
  expiresInMs: number;
  /** The worker whose table holds it (0: single process). */
  worker: number;
}

export interface StickAnswer {
  entries: StickView[];
  total: number;
  counters: {
    hits: number;
    misses: number;
    moves: number;
    evictions: number;
    expired: number;
    adopted: number;
  };
}

const MAX_LIST = 10_000;

/** The query, answered in the process that holds the table (a worker's, or the only one). */
export function stickQuery(
  lb: LoadBalancer,
  q: Extract<SessionQuery, { op: 'stick' }>,
  worker = 0,
): StickAnswer | { removed: number } {
  const svc = lb.service(q.service);
  const st = svc.sticky;
  if (!st) return q.clear ? { removed: 0 } : { entries: [], total: 0, counters: zero() };
  const t = st.table;
  const now = svc.clock.now();
  t.sweep(now);
  if (q.clear) {
    const removed = q.key === null ? t.clear() : t.delete(q.key) ? 1 : 0;
    svc.stickForgotten(q.key);
    return { removed };
  }
  const entries: StickView[] = [];
  const view = (key: string, address: string, usedAt: number): StickView => ({
    key,
    backend: address,
    idleMs: now - usedAt,
    expiresInMs: Math.max(0, usedAt + t.expireMs - now),
    worker,
  });
  if (q.key !== null) {
    const e = t.peek(q.key);
    if (e && now - e.usedAt < t.expireMs) entries.push(view(e.key, e.address, e.usedAt));
  } else {
    for (const e of t.entries()) {
      if (entries.length >= q.limit) break;
      entries.push(view(e.key, e.address, e.usedAt));
    }
  }
  return { entries, total: t.length, counters: { ...t.counters } };
}

function zero(): StickAnswer['counters'] {
  return { hits: 0, misses: 0, moves: 0, evictions: 0, expired: 0, adopted: 0 };
}

/** Answers the route: from this process, or from every worker (merged). */
export async function stickRoute(
  lb: LoadBalancer,
  cluster: AdminCluster | null,
  service: string,
  key: string | null,
  clear: boolean,
  url: URL,
): Promise<unknown> {
  const svc = serviceOf(lb, service);
  if (!svc.cfg.stick) throw new HttpError(404, `service ${service} has no [stick] table`);
  const limitText = url.searchParams.get('limit');
  if (limitText !== null && !(/^\d{1,6}$/.test(limitText) && Number(limitText) <= MAX_LIST))
    throw new HttpError(400, `limit must be a whole number from 0 to ${MAX_LIST}`);
  const limit = limitText === null ? 1000 : Number(limitText);
  const q: SessionQuery = { op: 'stick', service, key, clear, limit };
  const answers = cluster
    ? (await cluster.sessions(q, null)).map((a) => a.answer)
    : [stickQuery(lb, q)];
  if (clear) {
    const removed = answers.reduce(
      (n: number, a) => n + ((a as { removed?: number }).removed ?? 0),
      0,
    );
    if (key !== null && removed === 0)
      throw new HttpError(404, `no stick entry ${key} in ${service}`);
    return { service, removed };
  }
  const all = answers as StickAnswer[];
  const entries = all.flatMap((a) => a.entries).slice(0, limit);
  if (key !== null && entries.length === 0)
    throw new HttpError(404, `no stick entry ${key} in ${service}`);
  const counters = zero();
  for (const a of all)
    for (const k of Object.keys(counters) as (keyof typeof counters)[])
      counters[k] += a.counters[k];
  return {
    service,
    on: svc.cfg.stick.on,
    total: all.reduce((n, a) => n + a.total, 0),
    counters,
    entries,
  };
}
