import cluster from 'node:cluster';
import { fileURLToPath } from 'node:url';
import type { AdminCluster } from '../admin/api.js';
import { type Clock, monotonicClock } from '../clock.js';
import type { ListenAddress } from '../config/listen.js';
import type { Config, LogLevel } from '../config/schema.js';
import { LbError } from '../errors.js';
import { PassedSockets } from '../lifecycle/passed-sockets.js';
import { LoadBalancer, type ReloadSummary } from '../load-balancer.js';
import type { Logger } from '../logger.js';
import { childExecArgv } from './gc-threads.js';
import { HeldSockets } from './held-sockets.js';
import { WorkerIpc } from './ipc.js';
import type { FromWorker, SessionQuery } from './messages.js';
import { ClusterReports } from './reports.js';
import { reusePortWanted } from './reuse-port.js';
import { discoveredMap, membersMap, StateBroadcast, stateMap } from './state-broadcast.js';
import type { WorkerStatus } from './views.js';
import { type Slot, WorkerSlots } from './worker-slots.js';

const WORKER_MAIN = fileURLToPath(new URL('./worker-main.js', import.meta.url));
const RELOAD_TIMEOUT_MS = 15_000;

/**
 * `[process] workers = N` (N > 1): this process is the cluster primary. It
 * owns what must happen once: config and reload, health probes (its
 * LoadBalancer runs in the "control" role: probes and backend state, no
 * listener), the admin server and signals. N workers (worker.ts) run the
 * listeners, sessions and warm pools. Backend state goes to every worker on
 * each change; workers send dial outcomes back, and the primary's BackendSet
 * decides on them as it does on its own probes. A worker that dies is
 * restarted with backoff while the others keep serving (worker-slots.ts).
 */
export class ClusterPrimary implements AdminCluster {
  readonly lb: LoadBalancer;
  private readonly fixedLogLevel: LogLevel | null;
  private readonly log: Logger;
  private readonly ipc: WorkerIpc;
  private readonly broadcast: StateBroadcast;
  private readonly slots: WorkerSlots;
  private readonly reports: ClusterReports;
  private closing: Promise<void> | null = null;
  private readonly held: HeldSockets;
  /** Workers bind their own sockets with SO_REUSEPORT (fixed for the life of the process). */
  private readonly reusePort = reusePortWanted();
  private reloading: Promise<unknown> = Promise.resolve();

  /**
   * `fixedLogLevel`: --log-level from the command line, which wins over the
   * file for good; null lets reloads set the level from [log] level.
   */
  constructor(
    config: Config,
    opts: {
      logger: Logger;
      fixedLogLevel: LogLevel | null;
      clock?: Clock;
      /** Sockets passed to this process (upgrade, systemd): the workers listen on them. */
      sockets?: PassedSockets;
    },
  ) {
    this.held = new HeldSockets(opts.sockets ?? PassedSockets.none(), opts.logger);
    this.fixedLogLevel = opts.fixedLogLevel;
    this.log = opts.logger;
    const clock = opts.clock ?? monotonicClock;
    this.ipc = new WorkerIpc(opts.logger);
    this.broadcast = new StateBroadcast(
      () => stateMap(this.lb),
      () => discoveredMap(this.lb),
      () => membersMap(this.lb),
      (m) => this.slots.postAll(m),
    );
    this.lb = new LoadBalancer(config, {
      logger: opts.logger,
      clock,
      role: 'control',
      followConfigLogLevel: opts.fixedLogLevel === null,
      onBackendsChanged: () => this.broadcast.queue(),
    });
    this.slots = new WorkerSlots(
      config.process.workers,
      this.ipc,
      {
        initial: () => ({
          config: this.lb.config,
          logLevel: this.fixedLogLevel ?? this.lb.config.log.level,
          followConfigLogLevel: this.fixedLogLevel === null,
          state: stateMap(this.lb),
          discovered: discoveredMap(this.lb),
          members: membersMap(this.lb),
          reusePort: this.reusePort,
        }),
        sockets: (n) => this.held.forSlot(this.listens(), n, config.process.workers),
        handle: (n, address, handle) => this.held.store(n, address, handle as object),
        dial: (m) => this.onDial(m),
        retire: (w) => this.reports.retire(w),
      },
      opts.logger,
      clock,
    );
    this.reports = new ClusterReports(this.lb, this.slots, this.ipc);
  }

  /** Starts probing, then every worker; resolves when all are listening. LB_ERR_LISTEN if one cannot bind. */
  async start(): Promise<void> {
    // With SO_REUSEPORT (the default on Linux) every worker listens on a socket of its own and
    // node:cluster's accept policy plays no part. Without it (BLITZ_LB_REUSE_PORT=0, or not
    // Linux) workers share each socket through node:cluster: SCHED_NONE unless
    // NODE_CLUSTER_SCHED_POLICY says otherwise. With SCHED_RR the primary accepts every
    // connection and passes it over IPC: measured here (bench/WORKERS.md) it took a fifth of
    // the CPU under churn and cut churn to 0.69x of one worker. Node reads the variable itself.
    if (!this.reusePort && !process.env.NODE_CLUSTER_SCHED_POLICY)
      cluster.schedulingPolicy = cluster.SCHED_NONE;
    // Workers run V8's collector on their own thread on a small machine (gc-threads.ts).
    cluster.setupPrimary({ exec: WORKER_MAIN, args: [], execArgv: childExecArgv() });
    // A passed socket that is missing stops the start here, with its reason.
    this.held.check(this.listens());
    await this.lb.start();
    try {
      await this.slots.start();
    } catch (err) {
      await this.close(0);
      throw err;
    }
  }

  private listens(): ListenAddress[] {
    return this.lb.config.services.map((s) => s.listen);
  }

  private onDial(m: Extract<FromWorker, { t: 'dial' }>): void {
    const svc = this.lb.allServices.find((x) => x.name === m.service);
    const b = svc?.backends.get(m.backend);
    if (!svc || !b) return;
    if (m.failure === null) svc.backends.reportDialSuccess(b);
    else svc.backends.recordDialFailure(b, m.failure);
  }

  /**
   * Applies a config read once here: the primary's own services first
   * (backends, probes), then every worker's (listeners, pools). Reloads run
   * one at a time. If a worker cannot apply it (a new listen address in use),
   * the primary and the workers that did apply it go back to the config in
   * force, and the error names the failing workers.
   */
  reload(next: Config): Promise<ReloadSummary> {
    const run = this.reloading.then(() => this.doReload(next));
    this.reloading = run.catch(() => {});
    return run;
  }

  private async doReload(next: Config): Promise<ReloadSummary> {
    const prev = this.lb.config;
    const summary = await this.lb.reload(next);
    // Starting workers too: one sent the old config just before this reload must not keep it.
    const slots = this.slots.configured;
    // Passed sockets new to this config go to running workers first (IPC keeps the order).
    const had = new Set(prev.services.map((s) => s.listen.address));
    for (const s of slots)
      for (const [address, list] of this.held.forSlot(this.listens(), s.n, this.slots.count))
        if (!had.has(address) && s.worker)
          for (const h of list) this.ipc.post(s.worker, { t: 'socket', address }, h);
    const apply = (targets: Slot[], config: Config) =>
      Promise.allSettled(
        targets.map((s) => this.ipc.request(s, { t: 'reload', config }, RELOAD_TIMEOUT_MS)),
      );
    const results = await apply(slots, next).finally(() => this.pruneHeld());
    const failed = results.flatMap((r, i) =>
      r.status === 'rejected' ? [`worker ${slots[i]?.n}: ${(r.reason as Error).message}`] : [],
    );
    if (failed.length > 0) {
      await this.lb.reload(prev);
      const applied = slots.filter((_, i) => results[i]?.status === 'fulfilled');
      const back = await apply(applied, prev);
      // A worker that cannot go back runs the new config alone: say so, loudly.
      this.pruneHeld();
      back.forEach((r, i) => {
        if (r.status === 'rejected')
          this.log.error(
            { worker: applied[i]?.n, reason: (r.reason as Error).message },
            'reload rollback failed in a worker: it keeps the new config until restarted',
          );
      });
    }
    this.broadcast.queue();
    if (failed.length > 0)
      throw new LbError('LB_ERR_STATE', `${failed.join('; ')}; the old config stays in force`);
    return summary;
  }

  /** Stops every worker (each drains for up to timeoutMs), then the probes. */
  close(timeoutMs = this.lb.config.process.shutdownTimeoutMs): Promise<void> {
    if (this.closing) {
      // A second signal: every worker still draining ends its sessions now.
      if (timeoutMs === 0) this.slots.postAll({ t: 'stop', timeoutMs: 0 });
      return this.closing;
    }
    this.closing = this.doClose(timeoutMs);
    return this.closing;
  }

  /** The workers' sockets of addresses the config in force does not serve are let go. */
  private pruneHeld(): void {
    this.held.prune(new Set(this.listens().map((l) => l.address)));
  }

  private async doClose(timeoutMs: number): Promise<void> {
    // Held copies would keep each socket listening after its worker closed it: new clients
    // are refused from now on, as with one process.
    this.held.releaseOwn();
    await this.slots.stop(timeoutMs);
    await this.lb.close(0);
  }

  /**
   * Every listen address's sockets, for an upgrade: the ones this process
   * holds (held-sockets.ts), one per worker with SO_REUSEPORT, passed on
   * whole so no queued client is reset when this process stops. They stay
   * held here (`release` is nothing) until this process stops.
   */
  async listeningHandles(): Promise<{ sockets: Map<string, object>; release(): void }> {
    const { sockets, missing } = this.held.all(this.listens());
    if (missing.length > 0)
      throw new LbError(
        'LB_ERR_UPGRADE',
        `no socket held for ${missing.join(', ')}; an upgrade with workers needs SO_REUSEPORT or the default accept policy (NODE_CLUSTER_SCHED_POLICY unset or "none")`,
      );
    return { sockets, release: () => {} };
  }

  /** Slots and their state, for /api/services. */
  status(): WorkerStatus[] {
    return this.slots.status();
  }

  servicesView(): Promise<unknown> {
    return this.reports.servicesView();
  }

  sessions(q: SessionQuery, worker: number | null): Promise<{ worker: number; answer: unknown }[]> {
    return this.reports.sessions(q, worker);
  }

  metrics(): Promise<{ body: string; contentType: string }> {
    return this.reports.metrics();
  }
}
