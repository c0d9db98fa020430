import type { Backend } from '../backend/backend.js';
import type { Histogram } from '../histogram.js';
import type { LoadBalancer } from '../load-balancer.js';
import type { Service } from '../service.js';

export type Labels = Record<string, string>;
export interface Sample {
  value: number;
  labels: Labels;
  metricName?: string;
}
/** sum for counts and levels; max for a longest wait; first for what every process says alike. */
export type Aggregator = 'sum' | 'max' | 'first';

export type MetricType = 'counter' | 'gauge' | 'histogram';

interface MetricValue {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  values: Sample[];
  /** How prom-client's AggregatorRegistry combines workers' values (see src/cluster/). */
  aggregator: Aggregator;
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
export class ScrapeMetric {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: MetricValue['type'],
    private readonly read: () => Sample[],
    private readonly aggregator: Aggregator = 'sum',
  ) {}

  get(): MetricValue {
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      values: this.read(),
      aggregator: this.aggregator,
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

/** The prefix of every blitz-lb metric. */
export const P = 'blitz_lb_';

/** Metrics of one type named `blitz_lb_NAME`, read at scrape time. */
function ofType(type: 'gauge' | 'counter') {
  return (name: string, help: string, read: () => Sample[], aggregator?: Aggregator) =>
    new ScrapeMetric(`${P}${name}`, help, type, read, aggregator);
}
export const gauge = ofType('gauge');
export const counter = ofType('counter');

/** A counter per key of `help`, in its order: `blitz_lb_PREFIX_KEY_total`, read by `read(key)`. */
export function counterFamily<K extends string>(
  prefix: string,
  help: Readonly<Record<K, string>>,
  read: (key: K) => () => Sample[],
): ScrapeMetric[] {
  return (Object.keys(help) as K[]).map((k) => counter(`${prefix}_${k}_total`, help[k], read(k)));
}

export function perService(lb: LoadBalancer, f: (s: Service) => number): () => Sample[] {
  return () => lb.allServices.map((s) => ({ value: f(s), labels: { service: s.name } }));
}

/** The samples of every backend of every service, as f gives them (none, one or several). */
export function backendSamples(
  lb: LoadBalancer,
  f: (s: Service, b: Backend) => Sample[],
): () => Sample[] {
  return () => lb.allServices.flatMap((s) => s.backends.all.flatMap((b) => f(s, b)));
}

export function perBackend(
  lb: LoadBalancer,
  f: (s: Service, b: Backend) => number,
): () => Sample[] {
  return backendSamples(lb, (s, b) => [
    { value: f(s, b), labels: { service: s.name, backend: b.name } },
  ]);
}

/** One sample per service and key of a record of counts (by cause, by code), the key as `label`. */
export function perServiceRecord(
  lb: LoadBalancer,
  label: string,
  record: (s: Service) => Readonly<Record<string, number>>,
): () => Sample[] {
  return () =>
    lb.allServices.flatMap((s) =>
      Object.entries(record(s)).map(([key, value]) => ({
        value,
        labels: { service: s.name, [label]: key },
      })),
    );
}

/** One sample per service and label value: `[label value, read]` pairs. */
export function perServiceBy(
  lb: LoadBalancer,
  label: string,
  parts: readonly (readonly [string, (s: Service) => number])[],
): () => Sample[] {
  return () =>
    lb.allServices.flatMap((s) =>
      parts.map(([v, f]) => ({ value: f(s), labels: { service: s.name, [label]: v } })),
    );
}
