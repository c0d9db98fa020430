import type { SessionQuery } from '../cluster/messages.js';
import type { LoadBalancer } from '../load-balancer.js';
import type { Session } from '../proxy/session.js';
import type { Service } from '../service.js';
import { stickQuery } from './stick-query.js';

/** One open session as GET /api/services/NAME/sessions lists it. */
export interface SessionView {
  /** "17", or "2.17" with workers (worker 2's session 17): what DELETE …/sessions/ID takes. */
  id: string;
  client: string;
  /** Null while it is still dialling or waiting in the queue. */
  backend: string | null;
  state: 'connecting' | 'open';
  ageSeconds: number;
  bytesFromClient: number;
  bytesToClient: number;
  bytesToBackend: number;
  bytesFromBackend: number;
}

/** One process's page of a service's open sessions, those after id `after` (oldest first). */
export interface SessionPage {
  sessions: SessionView[];
  /** Open sessions in this process, whatever the page. */
  total: number;
}

/** The most a page may hold (a list is for a person or a script, not a dump of 10,000 sessions). */
export const MAX_PAGE = 1000;

function viewOf(svc: Service, s: Session, worker: number): SessionView {
  const c = s.client;
  const b = s.backend;
  return {
    id: worker > 0 ? `${worker}.${s.id}` : String(s.id),
    client: `${s.clientIp}:${c.remotePort ?? ''}`,
    backend: s.target?.address ?? null,
    state: s.phase === 'spliced' ? 'open' : 'connecting',
    ageSeconds: Math.round(svc.clock.now() - s.acceptedAt) / 1000,
    bytesFromClient: c.bytesRead,
    bytesToClient: c.bytesWritten,
    bytesToBackend: b?.bytesWritten ?? 0,
    bytesFromBackend: b?.bytesRead ?? 0,
  };
}

/** Answers a session query in this process (`worker`: its slot, 0 without workers). */
export function sessionQuery(
  lb: LoadBalancer,
  q: SessionQuery,
  worker = 0,
): SessionPage | { ended: boolean } | ReturnType<typeof stickQuery> {
  if (q.op === 'stick') return stickQuery(lb, q, worker);
  const svc = lb.service(q.service);
  if (q.op === 'end') return { ended: svc.endSession(q.id) };
  const sessions: SessionView[] = [];
  for (const s of svc.openSessions) {
    if (sessions.length >= q.limit) break;
    if (s.id > q.after) sessions.push(viewOf(svc, s, worker));
  }
  return { sessions, total: svc.activeSessions };
}

/** A cursor: where a page ended ("17", or "2.17" with workers). */
export interface Cursor {
  worker: number;
  id: number;
}

export function parseCursor(text: string | null): Cursor | null {
  if (text === null || text === '') return { worker: 0, id: 0 };
  const m = /^(?:(\d{1,4})\.)?(\d{1,15})$/.exec(text);
  if (!m) return null;
  return { worker: m[1] === undefined ? 0 : Number(m[1]), id: Number(m[2]) };
}
