import type { LoadBalancer } from '../load-balancer.js';
import type { Service } from '../service.js';
import {
  backendSamples,
  counter,
  gauge,
  perBackend,
  type Sample,
  type ScrapeMetric,
} from './scrape-metric.js';

/** Where the verdicts are made (not a cluster worker): state, probe kind, the last failure's cause. */
export function healthMetrics(lb: LoadBalancer): ScrapeMetric[] {
  return [
    gauge(
      'backend_up',
      '1 while the backend is healthy and in rotation.',
      perBackend(lb, (_s, b) => (b.state === 'up' ? 1 : 0)),
    ),
    gauge(
      'health_check_info',
      'The health probe kind of each service (1), and whether it has an agent check.',
      () =>
        lb.allServices.map((s) => ({
          value: 1,
          labels: {
            service: s.name,
            kind: s.cfg.health.kind,
            agent: s.cfg.health.agent ? 'yes' : 'no',
          },
        })),
    ),
    gauge(
      'backend_last_check_failure_timestamp_seconds',
      'Unix time of the last failed probe, with its cause (one series per backend that ever failed).',
      backendSamples(lb, (s, b) =>
        b.lastFailure
          ? [
              {
                value: Math.floor(b.lastFailure.at / 1000),
                labels: {
                  service: s.name,
                  backend: b.name,
                  kind: s.cfg.health.kind,
                  cause: b.lastFailure.detail.slice(0, 100),
                },
              },
            ]
          : [],
      ),
    ),
  ];
}

/** Discovery runs where probes do (the primary with workers), so these come from there alone. */
export function discoveryMetrics(lb: LoadBalancer): ScrapeMetric[] {
  const each = (f: (d: NonNullable<Service['discoveryStatus']>) => number) => (): Sample[] =>
    lb.allServices.flatMap((s) => {
      const d = s.discoveryStatus;
      return d ? [{ value: f(d), labels: { service: s.name, kind: d.kind } }] : [];
    });
  return [
    counter(
      'discovery_failures_total',
      'Discovery lookups that failed (NXDOMAIN, timeout, HTTP error, bad JSON, an empty answer); the last good list stayed.',
      each((d) => d.failures),
    ),
    gauge(
      'discovery_last_success_timestamp_seconds',
      'Unix time of the last good discovery answer (0: none yet).',
      each((d) => (d.lastSuccessAt ?? 0) / 1000),
    ),
    gauge(
      'discovery_backends',
      'Discovered backends in rotation (draining ones that left the answer not counted).',
      each((d) => d.backends),
    ),
  ];
}
