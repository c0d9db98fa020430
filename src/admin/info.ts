import { Gauge, Registry } from 'prom-client';
import type { WorkerStatus } from '../cluster/views.js';
import type { LoadBalancer } from '../load-balancer.js';
import type { ReloadRecord } from './reload-log.js';
import { P } from './scrape-metric.js';

/**
 * What this process is and how its last reload went, as metrics. Kept
 * apart from the balancer's registry, which a cluster sums over workers:
 * these are the primary's own, said once.
 */
export function infoRegistry(version: string, reload: ReloadRecord, cluster: boolean): Registry {
  const r = new Registry();
  new Gauge({
    name: `${P}build_info`,
    help: 'Always 1; the labels say which blitz-lb and which Node.js run.',
    labelNames: ['version', 'node'],
    registers: [r],
  }).set({ version, node: process.version }, 1);
  new Gauge({
    name: `${P}config_last_reload_successful`,
    help: '1 when the last reload (SIGHUP or POST /api/reload) applied; 0 when it failed and the old config stayed.',
    registers: [r],
    collect() {
      this.set(reload.ok ? 1 : 0);
    },
  });
  new Gauge({
    name: `${P}config_last_reload_success_timestamp_seconds`,
    help: 'Unix time of the last successful reload (of the start, before any).',
    registers: [r],
    collect() {
      this.set(Math.floor(reload.lastSuccessAt / 1000));
    },
  });
  if (cluster) {
    // The sum over workers leaves out per-process start times (prom-client's "omit"): the primary's.
    new Gauge({
      name: 'process_start_time_seconds',
      help: 'Start time of the process since unix epoch in seconds.',
      registers: [r],
    }).set(Math.round(Date.now() / 1000 - process.uptime()));
  }
  return r;
}

/** GET /api/info. */
export function infoView(o: {
  version: string;
  lb: LoadBalancer;
  reloads: ReloadRecord;
  workers: WorkerStatus[] | null;
  admin: string;
  token: boolean;
  readToken: boolean;
}): unknown {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  const r = o.reloads;
  return {
    version: o.version,
    node: process.version,
    pid: process.pid,
    startedAt: iso(Date.now() - process.uptime() * 1000),
    uptimeSeconds: Math.round(process.uptime()),
    configPath: o.lb.config.source,
    services: o.lb.serviceNames,
    workers: o.lb.config.process.workers,
    workerStatus: o.workers,
    admin: { listen: o.admin, token: o.token, readToken: o.readToken },
    lastReload: {
      at: iso(r.at),
      ok: r.ok,
      error: r.error,
      summary: r.summary,
      lastSuccessAt: iso(r.lastSuccessAt),
    },
  };
}
