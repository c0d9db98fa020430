import { collectDefaultMetrics, Registry } from 'prom-client';
import type { Histogram } from '../histogram.js';
import type { LoadBalancer } from '../load-balancer.js';
import type { Service } from '../service.js';

type Labels = Record<string, string>;
interface Sample {
  value: number;
  labels: Labels;
  metricName?: string;
}
interface MetricValue {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  values: Sample[];
  /** How prom-client's AggregatorRegistry combines workers' values (see src/cluster/). */
  aggregator: 'sum';
}

/** A metric read at scrape time, for callers that add their own (the cluster primary). */
export interface ExtraMetric {
  name: string;
  help: string;
  type: MetricValue['type'];
  read: () => Sample[];
}

/**
 * A metric that prom-client's registry asks for at scrape time. The hot path
 * only bumps plain numbers on services and backends; this reads them, so
 * metrics add nothing per session or per chunk.
 */
class ScrapeMetric {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: MetricValue['type'],
    private readonly read: () => Sample[],
  ) {}

  get(): MetricValue {
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      values: this.read(),
      aggregator: 'sum',
    };
  }
}

/** Histogram samples in Prometheus form: cumulative `_bucket{le}`, `_sum`, `_count`. */
export function histogramSamples(name: string, h: Histogram, labels: Labels): Sample[] {
  const out: Sample[] = [];
  let cum = 0;
  for (let i = 0; i < h.counts.length; i++) {
    cum += h.counts[i] as number;
    const le = i < h.bounds.length ? String(h.bounds[i]) : '+Inf';
    out.push({ metricName: `${name}_bucket`, value: cum, labels: { ...labels, le } });
  }
  out.push({ metricName: `${name}_sum`, value: h.sum, labels });
  out.push({ metricName: `${name}_count`, value: h.count, labels });
  return out;
}

const P = 'blitz_lb_';

/**
 * The registry behind GET /metrics: blitz_lb_* read from live counters, plus
 * Node's process metrics. With workers, each worker's registry holds the
 * traffic metrics and the primary's holds backend_up (its verdicts are the
 * ones in force) and `extra`; the primary sums them all (cluster/primary.ts),
 * so no value is counted twice.
 */
export function createRegistry(lb: LoadBalancer, extra: readonly ExtraMetric[] = []): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: P });
  const metrics = [
    ...(lb.role === 'control' ? [] : trafficMetrics(lb)),
    ...(lb.role === 'serve' ? [] : [backendUp(lb)]),
    ...extra.map((m) => new ScrapeMetric(m.name, m.help, m.type, m.read)),
  ];
  for (const m of metrics) registry.registerMetric(m as never);
  return registry;
}

function backendUp(lb: LoadBalancer): ScrapeMetric {
  return new ScrapeMetric(
    `${P}backend_up`,
    '1 while the backend is healthy and in rotation.',
    'gauge',
    () =>
      lb.allServices.flatMap((s) =>
        s.set.all.map((b) => ({
          value: b.state === 'up' ? 1 : 0,
          labels: { service: s.name, backend: b.address },
        })),
      ),
  );
}

function trafficMetrics(lb: LoadBalancer): ScrapeMetric[] {
  const services = (): Service[] => lb.allServices;
  const perService = (f: (s: Service) => number) => () =>
    services().map((s) => ({ value: f(s), labels: { service: s.name } }));
  const perBackend =
    (f: (s: Service, b: Service['set']['all'][number]) => number) => (): Sample[] =>
      services().flatMap((s) =>
        s.set.all.map((b) => ({ value: f(s, b), labels: { service: s.name, backend: b.address } })),
      );

  const metrics = [
    new ScrapeMetric(
      `${P}sessions_total`,
      'Sessions spliced to a backend.',
      'counter',
      perBackend((_s, b) => b.sessionsTotal),
    ),
    new ScrapeMetric(
      `${P}accepted_total`,
      'Client connections accepted.',
      'counter',
      perService((s) => s.counters.accepted),
    ),
    new ScrapeMetric(
      `${P}active_sessions`,
      'Open sessions (client connections not yet closed).',
      'gauge',
      () => [...services().map((s) => ({ value: s.activeSessions, labels: { service: s.name } }))],
    ),
    new ScrapeMetric(
      `${P}backend_active_sessions`,
      'Open sessions on each backend.',
      'gauge',
      perBackend((_s, b) => b.active),
    ),
    new ScrapeMetric(`${P}refused_total`, 'Clients turned away, by reason.', 'counter', () =>
      services().flatMap((s) => [
        { value: s.counters.refusedLimit, labels: { service: s.name, reason: 'max-connections' } },
        { value: s.counters.refusedQueueFull, labels: { service: s.name, reason: 'queue-full' } },
        {
          value: s.counters.refusedQueueTimeout,
          labels: { service: s.name, reason: 'queue-timeout' },
        },
        { value: s.counters.refusedNoBackend, labels: { service: s.name, reason: 'no-backend' } },
        { value: s.counters.connectFailed, labels: { service: s.name, reason: 'connect-failed' } },
        { value: s.counters.refusedProxy, labels: { service: s.name, reason: 'proxy-header' } },
        {
          value: s.counters.refusedSourceConnections,
          labels: { service: s.name, reason: 'source-connections' },
        },
        { value: s.counters.refusedSourceRate, labels: { service: s.name, reason: 'source-rate' } },
      ]),
    ),
    new ScrapeMetric(
      `${P}queued_total`,
      'Sessions that waited for a backend slot.',
      'counter',
      perService((s) => s.counters.queued),
    ),
    new ScrapeMetric(
      `${P}dial_failures_total`,
      'Failed backend connects (live dials and pool refills).',
      'counter',
      perBackend((_s, b) => b.dialFailuresTotal),
    ),
    new ScrapeMetric(
      `${P}backend_aborts_total`,
      'Open sessions cut by a reset or error on the backend side.',
      'counter',
      perBackend((_s, b) => b.sessionsAbortedTotal),
    ),
    new ScrapeMetric(
      `${P}retries_total`,
      'Dial attempts after the first, per service.',
      'counter',
      perService((s) => s.counters.retries),
    ),
    new ScrapeMetric(`${P}bytes_total`, 'Bytes carried, counted at session close.', 'counter', () =>
      services().flatMap((s) =>
        s.set.all.flatMap((b) => [
          {
            value: b.bytesToBackend,
            labels: { service: s.name, backend: b.address, direction: 'to-backend' },
          },
          {
            value: b.bytesFromBackend,
            labels: { service: s.name, backend: b.address, direction: 'from-backend' },
          },
        ]),
      ),
    ),
    new ScrapeMetric(
      `${P}pool_idle`,
      'Idle pre-opened connections.',
      'gauge',
      perBackend((s, b) => s.pool.idleFor(b)),
    ),
    new ScrapeMetric(
      `${P}pool_hits_total`,
      'Sessions given a warm pooled connection.',
      'counter',
      perService((s) => s.pool.counters.hits),
    ),
    new ScrapeMetric(
      `${P}pool_misses_total`,
      'Sessions that found the pool empty and dialled.',
      'counter',
      perService((s) => s.pool.counters.misses),
    ),
    new ScrapeMetric(
      `${P}pool_evictions_total`,
      'Idle pooled connections closed, by cause.',
      'counter',
      () =>
        services().flatMap((s) =>
          Object.entries(s.pool.counters.evictions).map(([cause, value]) => ({
            value,
            labels: { service: s.name, cause },
          })),
        ),
    ),
    new ScrapeMetric(
      `${P}connect_seconds`,
      'Accept to backend-ready, by pool hit or miss.',
      'histogram',
      () =>
        services().flatMap((s) => [
          ...histogramSamples(`${P}connect_seconds`, s.connectLatency.hit, {
            service: s.name,
            pool: 'hit',
          }),
          ...histogramSamples(`${P}connect_seconds`, s.connectLatency.miss, {
            service: s.name,
            pool: 'miss',
          }),
        ]),
    ),
    new ScrapeMetric(`${P}session_seconds`, 'Session length, accept to close.', 'histogram', () =>
      services().flatMap((s) =>
        histogramSamples(`${P}session_seconds`, s.sessionDuration, { service: s.name }),
      ),
    ),
  ];
  if (lb.workerSlot > 0) {
    const worker = String(lb.workerSlot);
    metrics.push(
      new ScrapeMetric(
        `${P}worker_active_sessions`,
        'Open sessions in each worker process.',
        'gauge',
        () =>
          services().map((s) => ({ value: s.activeSessions, labels: { service: s.name, worker } })),
      ),
    );
  }
  return metrics;
}
