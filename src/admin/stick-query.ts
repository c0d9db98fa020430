import type { SessionQuery } from '../cluster/messages.js';
import type { LoadBalancer } from '../load-balancer.js';
import type { StickCounters } from '../shared/stick-table.js';

/**
 * A stick table's entries as the admin API shows them, answered in the process
 * that holds the table (a worker's, or the only one). Apart from the route
 * (admin/stick.ts) so that the sessions query (admin/sessions.ts) reaches it
 * without an import cycle through admin/api.ts.
 */

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
  counters: StickCounters;
}

/** The query, answered in the process that holds the table (a worker's, or the only one). */
export function stickQuery(
  lb: LoadBalancer,
  q: Extract<SessionQuery, { op: 'stick' }>,
  worker = 0,
): StickAnswer | { removed: number } {
  const svc = lb.service(q.service);
  const st = svc.sticky;
  if (!st) return q.clear ? { removed: 0 } : { entries: [], total: 0, counters: zeroCounters() };
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

export function zeroCounters(): StickAnswer['counters'] {
  return { hits: 0, misses: 0, moves: 0, evictions: 0, expired: 0, adopted: 0 };
}
