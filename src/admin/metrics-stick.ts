import type { LoadBalancer } from '../load-balancer.js';
import type { Service } from '../service.js';
import { counter, counterFamily, gauge, type Sample, type ScrapeMetric } from './scrape-metric.js';

/** Services with a stick table only: one without has no series. */
function perStick(lb: LoadBalancer, f: (s: Service) => number): () => Sample[] {
  return () =>
    lb.allServices
      .filter((s) => s.sticky !== null)
      .map((s) => ({ value: f(s), labels: { service: s.name } }));
}

/** Singles from the process's Redis link (none without [cluster]). */
function ofLink(
  lb: LoadBalancer,
  f: (l: NonNullable<LoadBalancer['redis']>) => number,
): () => Sample[] {
  return () => (lb.redis ? [{ value: f(lb.redis), labels: {} }] : []);
}

/** The stick table's counters, in /metrics order: blitz_lb_stick_KEY_total and its help. */
const STICK_COUNTERS = {
  hits: 'Picks that went to the stuck backend.',
  misses: 'Picks with no entry: placed by the strategy, then remembered.',
  moves:
    'Picks whose stuck backend was no candidate (down, drained, disabled, at its cap, or failed this dial): placed again and the entry moved.',
  evictions: 'Entries pushed out at the table size (least recently used first).',
} as const;

/** Stick tables and the [cluster] Redis link, read at scrape time. */
export function stickMetrics(lb: LoadBalancer): ScrapeMetric[] {
  const table = (s: Service) => (s.sticky as NonNullable<Service['sticky']>).table;
  return [
    gauge(
      'stick_entries',
      'Entries in the stick table now (expired ones swept at scrape).',
      perStick(lb, (s) => {
        table(s).sweep(s.clock.now());
        return table(s).length;
      }),
    ),
    ...counterFamily('stick', STICK_COUNTERS, (k) => perStick(lb, (s) => table(s).counters[k])),
    gauge(
      'cluster_redis_up',
      '1 while this process is connected to the [cluster] Redis (summed over workers).',
      ofLink(lb, (l) => (l.up ? 1 : 0)),
    ),
    counter(
      'cluster_redis_errors_total',
      'Redis calls that failed or timed out, and lost connections; each one decided locally instead.',
      ofLink(lb, (l) => l.errors),
    ),
    gauge(
      'cluster_instances',
      'Instances alive at the last heartbeat (the N of limit ÷ N while Redis is away).',
      ofLink(lb, (l) => l.instances),
      'max',
    ),
  ];
}
