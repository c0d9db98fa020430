import cluster, { type Worker } from 'node:cluster';
import { fileURLToPath } from 'node:url';
import { AggregatorRegistry, type Registry } from 'prom-client';
import { createRegistry } from '../admin/metrics.js';
import type { AdminCluster } from '../admin/server.js';
import { type Clock, monotonicClock } from '../clock.js';
import type { Config, LogLevel } from '../config/schema.js';
import { LbError } from '../errors.js';
import { LoadBalancer, type ReloadSummary } from '../load-balancer.js';
import type { Logger } from '../logger.js';
import { type FromWorker, isFromWorker, type StateMap, type ToWorker } from './messages.js';
import { clusterView, retireView, type WorkerStatus, type WorkerView } from './views.js';

const WORKER_MAIN = fileURLToPath(new URL('./worker-main.js', import.meta.url));
const QUERY_TIMEOUT_MS = 2_000;
const RELOAD_TIMEOUT_MS = 15_000;
/** Restart backoff: 100 ms, doubling per quick death, at most 10 s; reset once a worker lived 10 s. */
const RESTART_MIN_MS = 100;
const RESTART_MAX_MS = 10_000;
const STABLE_MS = 10_000;
/** After the drain deadline, workers still alive this much later are killed. */
const STOP_GRACE_MS = 5_000;

interface Slot {
  n: number;
  worker: Worker | null;
  state: WorkerStatus['state'];
  /** The running worker has been sent its config (so it must also be sent each reload). */
  configured: boolean;
  restarts: number;
  /** Consecutive deaths within STABLE_MS of starting. */
  quickDeaths: number;
  startedAt: number;
  timer: NodeJS.Timeout | null;
}

interface Pending {
  worker: Worker;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/** What a worker last reported, kept so its running totals outlive it. */
interface LastSeen {
  view: WorkerView | null;
  metrics: MetricsJson | null;
}

type Query = { t: 'reload'; config: Config } | { t: 'query'; what: 'view' | 'metrics' };

/**
 * `[process] workers = N` (N > 1): this process is the cluster primary. It
 * owns what must happen once: config and reload, health probes (its
 * LoadBalancer runs in the "control" role: probes and backend state, no
 * listener), the admin server and signals. N workers (worker.ts) run the
 * listeners, sessions and warm pools. Backend state goes to every worker on
 * each change; workers send dial outcomes back, and the primary's BackendSet
 * decides on them as it does on its own probes. A worker that dies is
 * restarted with backoff while the others keep serving.
 */
export class ClusterPrimary implements AdminCluster {
  readonly lb: LoadBalancer;
  private readonly log: Logger;
  private readonly logLevel: LogLevel;
  private readonly slots: Slot[];
  private readonly pending = new Map<number, Pending>();
  private readonly registry: Registry;
  private nextId = 1;
  private stopping = false;
  private closing: Promise<void> | null = null;
  private stateQueued = false;
  private reloading: Promise<unknown> = Promise.resolve();
  private readonly lastSeen = new WeakMap<Worker, LastSeen>();
  private retiredView: WorkerView | null = null;
  private retiredMetrics: Promise<MetricsJson | null> = Promise.resolve(null);

  private readonly clock: Clock;

  constructor(config: Config, opts: { logger: Logger; logLevel: LogLevel; clock?: Clock }) {
    this.log = opts.logger;
    this.logLevel = opts.logLevel;
    this.clock = opts.clock ?? monotonicClock;
    this.lb = new LoadBalancer(config, {
      logger: opts.logger,
      clock: this.clock,
      role: 'control',
      onBackendsChanged: () => this.queueState(),
    });
    this.slots = Array.from({ length: config.process.workers }, (_, i) => ({
      n: i + 1,
      worker: null,
      state: 'starting' as const,
      configured: false,
      restarts: 0,
      quickDeaths: 0,
      startedAt: 0,
      timer: null,
    }));
    this.registry = createRegistry(this.lb, [
      {
        name: 'blitz_lb_workers',
        help: 'Worker processes serving traffic now.',
        type: 'gauge',
        read: () => [{ value: this.slots.filter((s) => s.state === 'up').length, labels: {} }],
      },
      {
        name: 'blitz_lb_worker_restarts_total',
        help: 'Workers restarted after they died.',
        type: 'counter',
        read: () => this.slots.map((s) => ({ value: s.restarts, labels: { worker: String(s.n) } })),
      },
    ]);
  }

  /** Starts probing, then every worker; resolves when all are listening. LB_ERR_LISTEN if one cannot bind. */
  async start(): Promise<void> {
    // Accept policy: SCHED_NONE unless NODE_CLUSTER_SCHED_POLICY says otherwise. With SCHED_RR
    // the primary accepts every connection and passes it over IPC: measured here (README,
    // "Workers"; bench/WORKERS.md) it took a fifth of the CPU under churn and cut churn to
    // 0.69x of one worker, where SCHED_NONE gave 1.11x. Node reads the variable itself.
    if (!process.env.NODE_CLUSTER_SCHED_POLICY) cluster.schedulingPolicy = cluster.SCHED_NONE;
    cluster.setupPrimary({ exec: WORKER_MAIN, args: [] });
    await this.lb.start();
    try {
      await Promise.all(this.slots.map((s) => this.spawn(s)));
    } catch (err) {
      await this.close(0);
      throw err;
    }
  }

  private spawn(s: Slot): Promise<void> {
    const w = cluster.fork();
    s.worker = w;
    s.state = 'starting';
    s.configured = false;
    s.startedAt = this.clock.now();
    return new Promise((resolve, reject) => {
      let settled = false;
      w.on('message', (m: unknown) => {
        if (!isFromWorker(m)) return;
        if (m.t === 'hello') {
          s.configured = true;
          this.post(w, {
            t: 'init',
            slot: s.n,
            workers: this.slots.length,
            config: this.lb.config,
            logLevel: this.logLevel,
            state: this.stateMap(),
          });
        } else if (m.t === 'ready') {
          settled = true;
          s.state = 'up';
          this.log.info({ worker: s.n, workerPid: w.process.pid }, 'worker up');
          resolve();
        } else if (m.t === 'fatal') {
          settled = true;
          reject(new LbError('LB_ERR_LISTEN', m.message));
        } else this.onMessage(m);
      });
      w.on('error', (err) => this.log.warn({ worker: s.n, err: err.message }, 'worker IPC error'));
      w.on('exit', (code, signal) => {
        this.failPending(w);
        if (!settled) {
          settled = true;
          reject(
            new LbError(
              'LB_ERR_STATE',
              `worker ${s.n} exited (${signal ?? `code ${code}`}) before it was ready`,
            ),
          );
        }
        this.onExit(s, w, code, signal);
      });
    });
  }

  private onExit(s: Slot, w: Worker, code: number | null, signal: string | null): void {
    if (s.worker !== w) return;
    s.worker = null;
    this.retire(w);
    // During start too: a worker that died after saying ready is restarted; if start fails,
    // close() clears the timer.
    if (this.stopping) return;
    const lived = this.clock.now() - s.startedAt;
    s.quickDeaths = lived >= STABLE_MS ? 1 : s.quickDeaths + 1;
    const delay = Math.min(RESTART_MIN_MS * 2 ** (s.quickDeaths - 1), RESTART_MAX_MS);
    s.restarts++;
    s.state = 'restarting';
    this.log.error(
      { worker: s.n, workerPid: w.process.pid, code, signal, restartInMs: delay },
      'worker died; restarting it (the others keep serving)',
    );
    s.timer = setTimeout(() => {
      s.timer = null;
      this.spawn(s).catch((err: Error) =>
        this.log.error({ worker: s.n, reason: err.message }, 'worker failed to start'),
      );
    }, delay);
  }

  private onMessage(m: FromWorker): void {
    if (m.t === 'dial') {
      const svc = this.lb.allServices.find((x) => x.name === m.service);
      const b = svc?.backends.get(m.backend);
      if (!svc || !b) return;
      if (m.ok) svc.backends.reportDialSuccess(b);
      else svc.backends.recordDialFailure(b, m.cause);
    } else if (m.t === 'reply') {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      clearTimeout(p.timer);
      if (m.ok) p.resolve(m.data);
      else p.reject(new Error(m.error));
    }
  }

  private post(w: Worker, m: ToWorker): void {
    if (!w.isConnected()) return;
    try {
      w.send(m);
    } catch (err) {
      this.log.warn({ pid: w.process.pid, err: (err as Error).message }, 'worker IPC send failed');
    }
  }

  private request(s: Slot, q: Query, timeoutMs: number): Promise<unknown> {
    const w = s.worker;
    if (!w) return Promise.reject(new Error(`worker ${s.n} is not running`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`worker ${s.n}: no reply in ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { worker: w, resolve, reject, timer });
      this.post(w, { ...q, id });
    });
  }

  private failPending(w: Worker): void {
    for (const [id, p] of this.pending) {
      if (p.worker !== w) continue;
      this.pending.delete(id);
      clearTimeout(p.timer);
      p.reject(new Error('the worker exited'));
    }
  }

  private get upSlots(): Slot[] {
    return this.slots.filter((s) => s.state === 'up' && s.worker);
  }

  private stateMap(): StateMap {
    return Object.fromEntries(this.lb.allServices.map((s) => [s.name, s.backends.snapshot()]));
  }

  /** Coalesces a burst of backend changes into one broadcast, sent after the current tick. */
  private queueState(): void {
    if (this.stateQueued) return;
    this.stateQueued = true;
    setImmediate(() => {
      this.stateQueued = false;
      const m: ToWorker = { t: 'state', services: this.stateMap() };
      for (const s of this.slots) if (s.worker) this.post(s.worker, m);
    });
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
    const slots = this.slots.filter((s) => s.worker && s.configured);
    const apply = (targets: Slot[], config: Config) =>
      Promise.allSettled(
        targets.map((s) => this.request(s, { t: 'reload', config }, RELOAD_TIMEOUT_MS)),
      );
    const results = await apply(slots, next);
    const failed = results.flatMap((r, i) =>
      r.status === 'rejected' ? [`worker ${slots[i]?.n}: ${(r.reason as Error).message}`] : [],
    );
    if (failed.length > 0) {
      await this.lb.reload(prev);
      await apply(
        slots.filter((_, i) => results[i]?.status === 'fulfilled'),
        prev,
      );
    }
    this.queueState();
    if (failed.length > 0)
      throw new LbError('LB_ERR_STATE', `${failed.join('; ')}; the old config stays in force`);
    return summary;
  }

  /** Stops every worker (each drains for up to timeoutMs), then the probes. */
  close(timeoutMs = this.lb.config.process.shutdownTimeoutMs): Promise<void> {
    if (this.closing) {
      // A second signal: every worker still draining ends its sessions now.
      if (timeoutMs === 0)
        for (const s of this.slots) if (s.worker) this.post(s.worker, { t: 'stop', timeoutMs: 0 });
      return this.closing;
    }
    this.stopping = true;
    this.closing = this.doClose(timeoutMs);
    return this.closing;
  }

  private async doClose(timeoutMs: number): Promise<void> {
    const live: Worker[] = [];
    for (const s of this.slots) {
      if (s.timer) clearTimeout(s.timer);
      s.timer = null;
      const w = s.worker;
      if (!w) continue;
      live.push(w);
      if (s.state === 'up') this.post(w, { t: 'stop', timeoutMs });
      else w.process.kill('SIGKILL');
      s.state = 'stopping';
    }
    const exits = live.map((w) =>
      w.isDead() ? Promise.resolve() : new Promise<void>((r) => w.once('exit', () => r())),
    );
    const guard = setTimeout(() => {
      for (const w of live) if (!w.isDead()) w.process.kill('SIGKILL');
    }, timeoutMs + STOP_GRACE_MS);
    await Promise.all(exits);
    clearTimeout(guard);
    await this.lb.close(0);
  }

  /** Slots and their state, for /api/services. */
  status(): WorkerStatus[] {
    return this.slots.map((s) => ({
      worker: s.n,
      pid: s.worker?.process.pid ?? null,
      state: s.state,
      restarts: s.restarts,
    }));
  }

  /** Asks every worker that is up; answers from workers that died meanwhile are dropped. */
  private async queryAll(
    what: 'view' | 'metrics',
  ): Promise<{ slot: Slot; w: Worker; value: unknown }[]> {
    const asked = this.upSlots.map((s) => ({ slot: s, w: s.worker as Worker }));
    const replies = await Promise.allSettled(
      asked.map((a) => this.request(a.slot, { t: 'query', what }, QUERY_TIMEOUT_MS)),
    );
    return asked.flatMap((a, i) => {
      const r = replies[i];
      return r?.status === 'fulfilled' && !a.w.isDead() ? [{ ...a, value: r.value }] : [];
    });
  }

  private lastSeenOf(w: Worker): LastSeen {
    let seen = this.lastSeen.get(w);
    if (!seen) {
      seen = { view: null, metrics: null };
      this.lastSeen.set(w, seen);
    }
    return seen;
  }

  /**
   * A worker died: what it last reported of its running totals joins those
   * of earlier dead workers, so summed counters do not go backwards (what it
   * counted after its last report is lost).
   */
  private retire(w: Worker): void {
    const seen = this.lastSeen.get(w);
    if (!seen) return;
    this.lastSeen.delete(w);
    if (seen.view) this.retiredView = retireView(seen.view, this.retiredView);
    const m = seen.metrics;
    if (!m) return;
    // prom-client's types call `type` an enum; at run time it is the string ("counter", …).
    const totals = m.filter((x) => ['counter', 'histogram'].includes(x.type as unknown as string));
    const before = this.retiredMetrics;
    this.retiredMetrics = before.then((prev) =>
      AggregatorRegistry.aggregate([...(prev ? [prev] : []), totals]).getMetricsAsJSON(),
    );
  }

  async servicesView(): Promise<unknown> {
    const views: WorkerView[] = [];
    for (const r of await this.queryAll('view')) {
      const v = { worker: r.slot.n, ...(r.value as Omit<WorkerView, 'worker'>) };
      this.lastSeenOf(r.w).view = v;
      views.push(v);
    }
    if (this.retiredView) views.push(this.retiredView);
    return clusterView(this.lb, views, this.status());
  }

  /**
   * Every worker's registry and the primary's, summed by prom-client's
   * AggregatorRegistry, plus the last totals of workers that died.
   */
  async metrics(): Promise<{ body: string; contentType: string }> {
    const parts: MetricsJson[] = [await this.registry.getMetricsAsJSON()];
    for (const r of await this.queryAll('metrics')) {
      const m = r.value as MetricsJson;
      this.lastSeenOf(r.w).metrics = m;
      parts.push(m);
    }
    const retired = await this.retiredMetrics;
    if (retired) parts.push(retired);
    const reg = AggregatorRegistry.aggregate(parts);
    return { body: await reg.metrics(), contentType: reg.contentType };
  }
}
