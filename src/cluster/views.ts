import { type BackendView, backendView, discoveryView, type ServiceView } from '../admin/views.js';
import type { LoadBalancer } from '../load-balancer.js';

/** One worker's answer to a view query (see ClusterWorker); worker 0 holds dead workers' totals. */
export interface WorkerView {
  worker: number;
  pid: number;
  services: ServiceView[];
}

/** The slots the primary manages, for the `workers` list of /api/services. */
export interface WorkerStatus {
  worker: number;
  pid: number | null;
  state: 'starting' | 'up' | 'restarting' | 'stopping';
  restarts: number;
}

/** Per-process running totals: they add up across workers and outlive a dead one. */
const BACKEND_TOTALS = [
  'sessionsTotal',
  'dialFailuresTotal',
  'sessionsAbortedTotal',
  'bytesToBackend',
  'bytesFromBackend',
] as const;
/** Per-process levels: they add up across live workers and leave with a dead one. */
const BACKEND_GAUGES = ['active', 'poolIdle'] as const;

/**
 * /api/services for a cluster: backend state (up, down, drain, weight, last
 * probe) from the primary, which decides it; traffic summed over the workers
 * that answered; and each worker's open sessions per service.
 */
export function clusterView(control: LoadBalancer, views: WorkerView[], workers: WorkerStatus[]) {
  const services = control.allServices.map((svc) => {
    const parts = views.flatMap((v) => {
      const s = v.services.find((x) => x.name === svc.name);
      return s ? [{ worker: v.worker, pid: v.pid, s }] : [];
    });
    const live = parts.filter((p) => p.worker > 0);
    const counters = { ...svc.counters };
    for (const k of Object.keys(counters) as (keyof typeof counters)[]) {
      counters[k] = parts.reduce((n, p) => n + (p.s.counters[k] ?? 0), 0);
    }
    const sum = (f: (s: ServiceView) => number): number => parts.reduce((n, p) => n + f(p.s), 0);
    return {
      name: svc.name,
      listen: live[0]?.s.listen ?? svc.cfg.listen.address,
      balance: svc.cfg.balance,
      health: svc.cfg.health.kind,
      // Discovery runs in the primary.
      discovery: discoveryView(svc),
      activeSessions: sum((s) => s.activeSessions),
      queue: {
        length: sum((s) => s.queue?.length ?? 0),
        longestWaitMs: Math.max(0, ...parts.map((p) => p.s.queue?.longestWaitMs ?? 0)),
      },
      counters,
      pool: {
        hits: sum((s) => s.pool.hits),
        misses: sum((s) => s.pool.misses),
        idle: sum((s) => s.pool.idle),
      },
      workers: live.map((p) => ({
        worker: p.worker,
        pid: p.pid,
        activeSessions: p.s.activeSessions,
        accepted: p.s.counters.accepted,
      })),
      backends: svc.backends.all.map((b) => {
        const v: BackendView = backendView(svc, b);
        for (const k of [...BACKEND_TOTALS, ...BACKEND_GAUGES]) {
          v[k] = parts.reduce(
            (n, p) => n + (p.s.backends.find((x) => x.address === b.address)?.[k] ?? 0),
            0,
          );
        }
        return v;
      }),
    };
  });
  return { services, workers };
}

/**
 * Folds a dead worker's last view into the running totals of dead workers
 * (worker 0), so summed counters never go backwards when a worker is
 * restarted; its open sessions and idle sockets went with it.
 */
export function retireView(dead: WorkerView, prev: WorkerView | null): WorkerView {
  const services = new Map<string, ServiceView>();
  for (const v of [prev, dead]) {
    for (const s of v?.services ?? []) {
      const into = services.get(s.name);
      if (!into) {
        services.set(s.name, {
          ...s,
          activeSessions: 0,
          queue: { length: 0, longestWaitMs: 0 },
          counters: { ...s.counters },
          pool: { ...s.pool, idle: 0 },
          backends: s.backends.map(withoutLevels),
        });
        continue;
      }
      for (const k of Object.keys(into.counters) as (keyof ServiceView['counters'])[])
        into.counters[k] += s.counters[k] ?? 0;
      into.pool.hits += s.pool.hits;
      into.pool.misses += s.pool.misses;
      for (const b of s.backends) {
        const ib = into.backends.find((x) => x.address === b.address);
        if (!ib) into.backends.push(withoutLevels(b));
        else for (const k of BACKEND_TOTALS) ib[k] += b[k];
      }
    }
  }
  return { worker: 0, pid: 0, services: [...services.values()] };
}

function withoutLevels(b: BackendView): BackendView {
  const out = { ...b };
  for (const k of BACKEND_GAUGES) out[k] = 0;
  return out;
}
