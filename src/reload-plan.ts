import type { ListenAddress } from './config/listen.js';
import type { Config } from './config/schema.js';
import { listenKey } from './config/sni.js';
import type { Listener } from './proxy/listener.js';
import type { Service } from './service.js';

/** Which bound listener each service of the next config serves from, worked out before anything changes. */
export interface ListenerPlan {
  /** Service name (next config) → its listener after the reload; services sharing an address share one. */
  readonly byName: Map<string, Listener>;
  /** Services that hold a listener now which others keep: they give it up first, so it is not closed. */
  readonly handed: Service[];
  /** Bound by this reload; closed again if the reload fails. */
  readonly fresh: Listener[];
  /** Service name → the listeners of the rest of its listen list (alsoListen), in order. */
  readonly extras: Map<string, Listener[]>;
  /** Listeners kept that change hands: each current holder gives these up (giveAwayListener). */
  readonly moved: Set<Listener>;
}

/** The key of one address of a listen list after the first: as a main listen's, so an address keeps its listener whichever service or place takes it. */
function extraKey(name: string, l: ListenAddress, i: number): string {
  return l.port !== 0 ? `listen ${l.address}` : `service ${name} ${l.address} #${i + 1}`;
}

/**
 * The first, fallible half of an all-or-nothing reload (and of start, with
 * no current services): every listen address of the next config gets a
 * bound listener. Listeners are keyed by address (config/sni.ts listenKey):
 * an address bound now keeps its listener, whichever services serve from it
 * next (a rename, a removed service's address reused, services joining or
 * leaving a shared SNI listener), so it is never closed and rebound, never
 * refuses a client and never fails with "address in use" against ourselves;
 * only addresses no one holds are bound. If one bind fails, the fresh ones
 * are closed and the error thrown: the running balancer has not changed.
 *
 * `current`: the running services; `added`: those the next config adds,
 * created but not started. Port 0 (tests, embedding) is kept only by the
 * same service, or by the same group of SNI services.
 */
export async function planListeners(
  current: readonly Service[],
  added: readonly Service[],
  next: Config,
): Promise<ListenerPlan> {
  const plan: ListenerPlan = {
    byName: new Map(),
    handed: [],
    fresh: [],
    extras: new Map(),
    moved: new Set(),
  };
  const bound = new Map<string, Listener>();
  for (const svc of current) {
    const l = svc.boundListener;
    if (l) bound.set(listenKey(svc.cfg), l);
    svc.extraListeners.forEach((x, i) => {
      const at = svc.cfg.alsoListen[i];
      if (at) bound.set(extraKey(svc.name, at, i), x);
    });
  }
  const owners = new Map([...current, ...added].map((s) => [s.name, s]));
  const chosen = new Map<string, Listener>();
  try {
    for (const cfg of next.services) {
      const svc = owners.get(cfg.name) as Service;
      if (!svc.acceptsClients) continue;
      const key = listenKey(cfg);
      let l = chosen.get(key) ?? bound.get(key);
      if (!l) {
        l = await svc.bind(cfg.listen);
        plan.fresh.push(l);
      }
      chosen.set(key, l);
      plan.byName.set(cfg.name, l);
      const extras: Listener[] = [];
      for (const [i, at] of cfg.alsoListen.entries()) {
        const k = extraKey(cfg.name, at, i);
        let x = chosen.get(k) ?? bound.get(k);
        if (!x) {
          x = await svc.bind(at);
          plan.fresh.push(x);
        }
        chosen.set(k, x);
        extras.push(x);
      }
      plan.extras.set(cfg.name, extras);
    }
  } catch (err) {
    for (const l of plan.fresh) l.stop();
    throw err;
  }
  const kept = new Set(chosen.values());
  for (const svc of current) {
    const own = new Set([plan.byName.get(svc.name), ...(plan.extras.get(svc.name) ?? [])]);
    const held = [svc.boundListener, ...svc.extraListeners];
    const away = held.filter((l): l is Listener => l !== null && kept.has(l) && !own.has(l));
    if (away.length === 0) continue;
    plan.handed.push(svc);
    for (const l of away) plan.moved.add(l);
  }
  return plan;
}
