import { collectDefaultMetrics, Registry } from 'prom-client';
import type { Backend } from '../backend/backend.js';
import { routeCounts } from '../balancer/routed.js';
import type { HttpBackendStats } from '../http/stats.js';
import type { LoadBalancer } from '../load-balancer.js';
import type { Service } from '../service.js';
import { backendStateMetrics } from './metrics-backends.js';
import { bandwidthMetrics } from './metrics-bandwidth.js';
import { discoveryMetrics, healthMetrics } from './metrics-health.js';
import { loadMetrics } from './metrics-load.js';
import { mirrorMetrics } from './metrics-mirror.js';
import { stickMetrics } from './metrics-stick.js';
import { tlsMetrics } from './metrics-tls.js';
import {
  type ExtraMetric,
  histogramSamples,
  type MetricType,
  P,
  perBackend,
  perService,
  perServiceBy,
  perServiceRecord,
  type Sample,
  ScrapeMetric,
} from './scrape-metric.js';

export { type ExtraMetric, histogramSamples } from './scrape-metric.js';

/**
 * The registry behind GET /metrics: blitz_lb_* read from live counters, plus
 * Node's process metrics. With workers, each worker's registry holds the
 * traffic metrics and the primary's holds backend_up (its verdicts are the
 * ones in force) and `extra`; the primary sums them all (cluster/reports.ts),
 * so no value is counted twice.
 */
export function createRegistry(lb: LoadBalancer, extra: readonly ExtraMetric[] = []): Registry {
  const registry = new Registry();
  // Unprefixed: the names stock Node.js dashboards query (process_cpu_user_seconds_total…).
  collectDefaultMetrics({ register: registry });
  const metrics = [
    ...(lb.role === 'control'
      ? []
      : [
          ...trafficMetrics(lb),
          ...loadMetrics(lb),
          ...tlsMetrics(lb),
          ...stickMetrics(lb),
          ...mirrorMetrics(lb),
          ...bandwidthMetrics(lb),
        ]),
    ...(lb.role === 'serve'
      ? []
      : [...healthMetrics(lb), ...backendStateMetrics(lb), ...discoveryMetrics(lb)]),
    ...extra.map((m) => new ScrapeMetric(m.name, m.help, m.type, m.read)),
  ];
  for (const m of metrics) registry.registerMetric(m as never);
  return registry;
}

/** One metric: name (without the prefix), help, type, and how to read its samples at scrape time. */
type Row = readonly [name: string, help: string, type: MetricType, read: () => Sample[]];

function trafficMetrics(lb: LoadBalancer): ScrapeMetric[] {
  const c = (s: Service) => s.counters;
  const rows: Row[] = [
    [
      'sessions_total',
      'Sessions spliced to a backend.',
      'counter',
      perBackend(lb, (_s, b) => b.sessionsTotal),
    ],
    [
      'accepted_total',
      'Client connections accepted.',
      'counter',
      perService(lb, (s) => c(s).accepted),
    ],
    [
      'active_sessions',
      'Open sessions (client connections not yet closed).',
      'gauge',
      perService(lb, (s) => s.activeSessions),
    ],
    [
      'backend_active_sessions',
      'Open sessions on each backend.',
      'gauge',
      perBackend(lb, (_s, b) => b.active),
    ],
    [
      'refused_total',
      'Clients turned away, by reason.',
      'counter',
      perServiceBy(lb, 'reason', [
        ['max-connections', (s) => c(s).refusedLimit],
        ['descriptors', (s) => c(s).refusedDescriptors],
        ['queue-full', (s) => c(s).refusedQueueFull],
        ['queue-timeout', (s) => c(s).refusedQueueTimeout],
        ['no-backend', (s) => c(s).refusedNoBackend],
        ['connect-failed', (s) => c(s).connectFailed],
        ['proxy-header', (s) => c(s).refusedProxy],
        ['source-connections', (s) => c(s).refusedSourceConnections],
        ['source-rate', (s) => c(s).refusedSourceRate],
        ['denied', (s) => c(s).refusedDenied],
      ]),
    ],
    [
      'sessions_ended_total',
      'Open sessions the balancer ended on purpose, by reason (health.on_down, health.on_up_primary, apply_to_open, and each deadline: idle_timeout, client_timeout, server_timeout, tunnel_timeout).',
      'counter',
      perServiceBy(lb, 'reason', [
        ['backend-down', (s) => c(s).endedBackendDown],
        ['primary-back', (s) => c(s).endedPrimaryBack],
        ['denied', (s) => c(s).endedDenied],
        ['idle-timeout', (s) => c(s).endedIdleTimeout],
        ['client-timeout', (s) => c(s).endedClientTimeout],
        ['server-timeout', (s) => c(s).endedServerTimeout],
        ['tunnel-timeout', (s) => c(s).endedTunnelTimeout],
      ]),
    ],
    [
      'sni_routed_total',
      'Clients routed by their ClientHello, by the sni pattern that took them (the route, not the name sent).',
      'counter',
      perServiceRecord(lb, 'route', (s) => s.stats.routes),
    ],
    [
      'route_sessions_total',
      'Sessions of a service with [[services.NAME.route]], by the route they took (its name, or "route[I]"; "default": no route matched, every backend).',
      'counter',
      perServiceRecord(lb, 'route', (s) => routeCounts(s.strategy)),
    ],
    [
      'tls_handshake_failures_total',
      'TLS handshakes this balancer terminates that failed, by cause.',
      'counter',
      perServiceRecord(lb, 'cause', (s) => s.tlsFailures),
    ],
    [
      'listener_refused_total',
      'Clients refused on a listen address that reads the ClientHello, before any service took them: bad-hello (not TLS, malformed, too large, late), refused-sni (no service takes the name), refused-proxy, refused-denied (every service here denies the address), refused-source (over the per-source count of clients still sending their hello), max-connections, descriptors.',
      'counter',
      () =>
        [...lb.listenerRefusals].flatMap(([listen, counts]) =>
          Object.entries(counts).map(([reason, value]) => ({
            value,
            labels: { listen, reason },
          })),
        ),
    ],
    [
      'queued_total',
      'Sessions that waited for a backend slot.',
      'counter',
      perService(lb, (s) => c(s).queued),
    ],
    [
      'backend_aborts_total',
      'Open sessions cut by a reset or error on the backend side.',
      'counter',
      perBackend(lb, (_s, b) => b.sessionsAbortedTotal),
    ],
    [
      'retries_total',
      'Dial attempts after the first, per service.',
      'counter',
      perService(lb, (s) => c(s).retries),
    ],
    [
      'pool_idle',
      'Idle pre-opened connections.',
      'gauge',
      perBackend(lb, (s, b) => s.pool.idleFor(b)),
    ],
    [
      'pool_idle_lifetime_seconds',
      'How long the backend keeps an idle pooled connection, as the pool learned it (0: nothing learned); pooled sockets retire a margin before it.',
      'gauge',
      perBackend(lb, (s, b) => s.pool.lifetimeFor(b) / 1000),
    ],
    [
      'pool_hits_total',
      'Sessions given a warm pooled connection.',
      'counter',
      perService(lb, (s) => s.pool.counters.hits),
    ],
    [
      'pool_misses_total',
      'Sessions that found the pool empty and dialled.',
      'counter',
      perService(lb, (s) => s.pool.counters.misses),
    ],
    [
      'pool_evictions_total',
      'Idle pooled connections closed, by cause.',
      'counter',
      perServiceRecord(lb, 'cause', (s) => s.pool.counters.evictions),
    ],
    [
      'pool_early_closes_total',
      'Idle pooled connections the backend closed, reset or flooded before use (refill backs off).',
      'counter',
      perServiceRecord(lb, 'cause', (s) => s.pool.counters.earlyCloses),
    ],
    [
      'local_errors_total',
      'The balancer’s own resource errors (EMFILE, ENFILE, ENOBUFS, EADDRNOTAVAIL…) on dials, refills and probes; never counted against a backend.',
      'counter',
      perServiceRecord(lb, 'code', (s) => s.localErrors.counts),
    ],
    [
      'session_errors_total',
      'Sessions closed because the balancer’s own code threw (logged with the stack).',
      'counter',
      perService(lb, (s) => c(s).sessionErrors),
    ],
    [
      'connect_seconds',
      'Accept to backend-ready, by pool hit or miss.',
      'histogram',
      () =>
        lb.allServices.flatMap((s) => [
          ...histogramSamples(`${P}connect_seconds`, s.stats.connectLatency.hit, {
            service: s.name,
            pool: 'hit',
          }),
          ...histogramSamples(`${P}connect_seconds`, s.stats.connectLatency.miss, {
            service: s.name,
            pool: 'miss',
          }),
        ]),
    ],
    [
      'session_seconds',
      'Session length, accept to close.',
      'histogram',
      () =>
        lb.allServices.flatMap((s) =>
          histogramSamples(`${P}session_seconds`, s.stats.sessionDuration, { service: s.name }),
        ),
    ],
  ];
  rows.push(...httpRows(lb));
  if (lb.workerSlot > 0) {
    const worker = String(lb.workerSlot);
    rows.push([
      'worker_active_sessions',
      'Open sessions in each worker process.',
      'gauge',
      () =>
        lb.allServices.map((s) => ({
          value: s.activeSessions,
          labels: { service: s.name, worker },
        })),
    ]);
  }
  return rows.map(([name, help, type, read]) => new ScrapeMetric(`${P}${name}`, help, type, read));
}

/**
 * HTTP requests through lb.request / lb.dispatcher, apart from the sessions:
 * per-backend series only for backends that were sent a request.
 */
function httpRows(lb: LoadBalancer): Row[] {
  const each =
    <T>(f: (s: Service, b: Backend, st: HttpBackendStats) => T[]) =>
    (): T[] =>
      lb.allServices.flatMap((s) =>
        s.backends.all.flatMap((b) => {
          const st = s.httpStats.of(b);
          return st ? f(s, b, st) : [];
        }),
      );
  return [
    [
      'http_requests_total',
      'HTTP requests sent to each backend (each try of a retried request counts).',
      'counter',
      each((s, b, st) => [{ value: st.requests, labels: { service: s.name, backend: b.name } }]),
    ],
    [
      'http_request_outcomes_total',
      'HTTP requests ended, by outcome: success (an answer below 500) or failure (an error, a timeout or a 5xx).',
      'counter',
      each((s, b, st) => [
        {
          value: st.successes,
          labels: { service: s.name, backend: b.name, outcome: 'success' },
        },
        { value: st.failures, labels: { service: s.name, backend: b.name, outcome: 'failure' } },
      ]),
    ],
    [
      'http_retries_total',
      'HTTP requests sent again to another backend (a failed connect, or a reset before any answer on an idempotent request).',
      'counter',
      perService(lb, (s) => s.httpStats.retries),
    ],
    [
      'http_request_seconds',
      'HTTP request latency per backend, sent to answer read (each try).',
      'histogram',
      each((s, b, st) =>
        histogramSamples(`${P}http_request_seconds`, st.latency, {
          service: s.name,
          backend: b.name,
        }),
      ),
    ],
  ];
}
