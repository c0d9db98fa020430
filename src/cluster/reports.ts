import type { Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';
import { createRegistry } from '../admin/metrics.js';
import type { LoadBalancer } from '../load-balancer.js';
import type { WorkerIpc } from './ipc.js';
import type { SessionQuery } from './messages.js';
import { clusterView, retireView, type WorkerView } from './views.js';
import type { Slot, WorkerSlots } from './worker-slots.js';

const QUERY_TIMEOUT_MS = 2_000;

type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/** What a worker last reported, kept so its running totals outlive it. */
interface LastSeen {
  view: WorkerView | null;
  metrics: MetricsJson | null;
}

/**
 * /api/services and /metrics for a cluster: gathered from every worker that
 * is up, joined with the primary's own (backend state, its registry), and
 * with the last totals of workers that died.
 */
export class ClusterReports {
  private readonly registry: Registry;
  private readonly lastSeen = new WeakMap<Worker, LastSeen>();
  private retiredView: WorkerView | null = null;
  private retiredMetrics: Promise<MetricsJson | null> = Promise.resolve(null);

  constructor(
    private readonly lb: LoadBalancer,
    private readonly slots: WorkerSlots,
    private readonly ipc: WorkerIpc,
  ) {
    this.registry = createRegistry(lb, slots.metrics());
  }

  /** Asks every worker that is up; answers from workers that died meanwhile are dropped. */
  private async queryAll(
    what: 'view' | 'metrics',
  ): Promise<{ slot: Slot; w: Worker; value: unknown }[]> {
    const asked = this.slots.up.map((s) => ({ slot: s, w: s.worker as Worker }));
    const replies = await Promise.allSettled(
      asked.map((a) => this.ipc.request(a.slot, { t: 'query', what }, QUERY_TIMEOUT_MS)),
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
  retire(w: Worker): void {
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

  /** A session query to one worker (`worker`) or every worker that is up; failed answers are left out. */
  async sessions(
    q: SessionQuery,
    worker: number | null,
  ): Promise<{ worker: number; answer: unknown }[]> {
    const targets = this.slots.up.filter((s) => worker === null || s.n === worker);
    const replies = await Promise.allSettled(
      targets.map((s) => this.ipc.request(s, { t: 'sessions', q }, QUERY_TIMEOUT_MS)),
    );
    return targets.flatMap((s, i) => {
      const r = replies[i];
      return r?.status === 'fulfilled' ? [{ worker: s.n, answer: r.value }] : [];
    });
  }

  async servicesView(): Promise<unknown> {
    const views: WorkerView[] = [];
    for (const r of await this.queryAll('view')) {
      const v = { worker: r.slot.n, ...(r.value as Omit<WorkerView, 'worker'>) };
      this.lastSeenOf(r.w).view = v;
      views.push(v);
    }
    if (this.retiredView) views.push(this.retiredView);
    return clusterView(this.lb, views, this.slots.status());
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
