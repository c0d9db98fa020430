import { type Backend, effectiveWeight } from '../backend/backend.js';
import { PROBE_CAUSES } from '../backend/causes.js';
import type { LoadBalancer } from '../load-balancer.js';
import {
  backendSamples,
  counter,
  gauge,
  histogramSamples,
  P,
  perBackend,
  perService,
  ScrapeMetric,
} from './scrape-metric.js';

/** Every state a backend can be in, as backend_state's `state` label. */
export const BACKEND_STATES = ['up', 'down', 'half-open', 'draining', 'disabled'] as const;

/** The one state word of a backend: an operator's action first, then health (half-open: on trial). */
export function stateWord(b: Backend): (typeof BACKEND_STATES)[number] {
  if (b.disabled) return 'disabled';
  if (b.draining) return 'draining';
  return b.phase === 'trial' ? 'half-open' : b.phase;
}

/**
 * Backend state, weights, limits and health-check figures: read where the
 * verdicts are made (the primary with workers; its values are the ones in
 * force, and its limits are the whole ones, not a worker's share).
 */
export function backendStateMetrics(lb: LoadBalancer): ScrapeMetric[] {
  const perBackendLabel = (
    label: string,
    values: readonly string[],
    f: (b: Backend, v: string) => number,
  ) =>
    backendSamples(lb, (s, b) =>
      values.map((v) => ({
        value: f(b, v),
        labels: { service: s.name, backend: b.name, [label]: v },
      })),
    );
  return [
    gauge(
      'backend_info',
      'Each backend’s address under its name (the `backend` label of every other metric: its `name`, else its address): 1.',
      () =>
        lb.allServices.flatMap((s) =>
          s.backends.all.map((b) => ({
            value: 1,
            labels: { service: s.name, backend: b.name, address: b.address },
          })),
        ),
      'first',
    ),
    gauge(
      'backend_state',
      'The backend’s state: 1 for the state it is in, 0 for the others (up, down, half-open, draining, disabled).',
      perBackendLabel('state', BACKEND_STATES, (b, v) => (stateWord(b) === v ? 1 : 0)),
    ),
    gauge(
      'backend_weight',
      'Weight: "configured" (the file’s, or the one it was added with), "effective" (what picking uses now: after the admin API, the agent and slow start).',
      backendSamples(lb, (s, b) => [
        {
          value: b.configuredWeight,
          labels: { service: s.name, backend: b.name, kind: 'configured' },
        },
        {
          value: effectiveWeight(b, s.clock.now()),
          labels: { service: s.name, backend: b.name, kind: 'effective' },
        },
      ]),
    ),
    gauge(
      'backend_max_connections',
      'The backend’s max_connections (0: no limit).',
      perBackend(lb, (_s, b) => b.maxConnections),
      'first',
    ),
    gauge(
      'backend_max_rate',
      'The backend’s max_rate in new sessions a second (0: no limit).',
      perBackend(lb, (_s, b) => b.maxRate),
      'first',
    ),
    gauge(
      'max_connections',
      'The service’s max_connections: open sessions beyond it are refused.',
      perService(lb, (s) => s.cfg.maxConnections),
      'first',
    ),
    gauge(
      'queue_size',
      'The service’s queue_size: clients that may wait for a backend slot.',
      perService(lb, (s) => s.cfg.queueSize),
      'first',
    ),
    new ScrapeMetric(
      `${P}health_check_seconds`,
      'How long health probes took (successes and failures).',
      'histogram',
      () =>
        lb.allServices.flatMap((s) =>
          histogramSamples(`${P}health_check_seconds`, s.backends.probeSeconds, {
            service: s.name,
            kind: s.cfg.health.kind,
          }),
        ),
    ),
    counter(
      'health_check_failures_total',
      'Failed health probes by cause: refused, timeout, reset, tls, bad-reply (the backend answered, not as the check wants), other.',
      perBackendLabel('cause', PROBE_CAUSES, (b, v) => b.probeFailures[v as 'other']),
    ),
    gauge(
      'backend_last_state_change_timestamp_seconds',
      'Unix time the backend last went up or down (its creation, before any change).',
      perBackend(lb, (_s, b) => Math.floor(b.stateChangedAt / 1000)),
      'first',
    ),
    counter(
      'backend_down_seconds_total',
      'Time the backend has spent down since it was added, the current outage included.',
      perBackend(lb, (_s, b) => b.downMs() / 1000),
      'first',
    ),
    gauge(
      'backend_checks_paused',
      '1 while an operator has paused the backend’s health checks (admin API).',
      perBackend(lb, (_s, b) => (b.checksPaused ? 1 : 0)),
      'first',
    ),
  ];
}
