import type { SessionQuery } from '../cluster/messages.js';
import type { LoadBalancer } from '../load-balancer.js';
import type { AdminCluster } from './api.js';
import { serviceOf } from './api.js';
import { HttpError } from './request-guard.js';
import { type StickAnswer, stickQuery, zeroCounters } from './stick-query.js';

const MAX_LIST = 10_000;

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
  const counters = zeroCounters();
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
