import type { Config } from './config/schema.js';
import type { Listener } from './proxy/listener.js';
import type { Service } from './service.js';

/** Which bound listener each service of the next config serves from, worked out before anything changes. */
export interface ListenerPlan {
  /** Service name (next config) → its listener after the reload. */
  readonly byName: Map<string, Listener>;
  /** Listeners that change owner: the service that holds one now gives it up first. */
  readonly handed: Map<Listener, Service>;
  /** Bound by this reload; closed again if the reload fails. */
  readonly fresh: Listener[];
}

/**
 * The first, fallible half of an all-or-nothing reload: every listen
 * address of the next config gets a bound listener. A service that keeps its
 * name and address keeps its listener; an address another service holds now
 * (a rename, a removed service's address reused, two services swapping) is
 * handed over, never closed and rebound, so it never refuses a client and
 * never fails with "address in use" against ourselves; only addresses no one
 * holds are bound. If one bind fails, the fresh ones are closed and the error
 * thrown: the running balancer has not changed at all.
 *
 * `current`: the running services; `added`: those the next config adds,
 * created but not started. Port 0 (tests, embedding) is never handed over.
 */
export async function planListeners(
  current: readonly Service[],
  added: readonly Service[],
  next: Config,
): Promise<ListenerPlan> {
  const plan: ListenerPlan = { byName: new Map(), handed: new Map(), fresh: [] };
  const nextByName = new Map(next.services.map((c) => [c.name, c]));
  const free = new Map<string, [Listener, Service]>();
  for (const svc of current) {
    const l = svc.boundListener;
    if (!l) continue;
    const cfg = nextByName.get(svc.name);
    if (cfg && cfg.listen.address === svc.cfg.listen.address) plan.byName.set(svc.name, l);
    else if (svc.cfg.listen.port !== 0) free.set(svc.cfg.listen.address, [l, svc]);
  }
  const owners = new Map([...current, ...added].map((s) => [s.name, s]));
  try {
    for (const cfg of next.services) {
      const svc = owners.get(cfg.name) as Service;
      if (plan.byName.has(cfg.name) || !svc.serves) continue;
      const held = cfg.listen.port !== 0 ? free.get(cfg.listen.address) : undefined;
      if (held) {
        free.delete(cfg.listen.address);
        plan.byName.set(cfg.name, held[0]);
        plan.handed.set(held[0], held[1]);
        continue;
      }
      const l = await svc.bind(cfg.listen);
      plan.fresh.push(l);
      plan.byName.set(cfg.name, l);
    }
  } catch (err) {
    for (const l of plan.fresh) l.stop();
    throw err;
  }
  return plan;
}
