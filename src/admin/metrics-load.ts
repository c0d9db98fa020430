import type { Backend } from '../backend/backend.js';
import { DIAL_CAUSES } from '../backend/causes.js';
import type { LoadBalancer } from '../load-balancer.js';
import type { Service } from '../service.js';
import {
  backendSamples,
  counter,
  gauge,
  perService,
  type Sample,
  type ScrapeMetric,
} from './scrape-metric.js';

/** Bytes of a service's open sessions, per backend, read from their sockets now. */
function openBytes(s: Service): Map<Backend, { from: number; to: number }> {
  const out = new Map<Backend, { from: number; to: number }>();
  for (const x of s.openSessions) {
    if (!x.target || !x.backend) continue;
    let v = out.get(x.target);
    if (!v) {
      v = { from: 0, to: 0 };
      out.set(x.target, v);
    }
    v.from += x.backend.bytesRead;
    v.to += x.backend.bytesWritten;
  }
  return out;
}

/**
 * Where sessions run (a cluster worker, or the one process): the wait
 * queue, dial failures by cause and bytes carried
 * including those of sessions still open.
 */
export function loadMetrics(lb: LoadBalancer): ScrapeMetric[] {
  return [
    gauge(
      'queue_length',
      'Clients waiting now for a backend slot (every backend at its max_connections or max_rate).',
      perService(lb, (s) => s.queueNow().length),
    ),
    gauge(
      'queue_longest_wait_seconds',
      'How long the longest-waiting client has waited so far (0: nobody waits).',
      perService(lb, (s) => s.queueNow().longestWaitMs / 1000),
      'max',
    ),
    counter(
      'dial_failures_total',
      'Failed backend connects (live dials and pool refills) by cause: refused, timeout, reset, tls, local (the balancer’s own EMFILE, EADDRNOTAVAIL…: not held against the backend), other.',
      backendSamples(lb, (s, b) =>
        DIAL_CAUSES.map((cause) => ({
          value: b.dialFailures[cause],
          labels: { service: s.name, backend: b.name, cause },
        })),
      ),
    ),
    counter(
      'bytes_total',
      'Bytes carried to and from each backend, open sessions included (their sockets are read at scrape time).',
      () =>
        lb.allServices.flatMap((s) => {
          const open = openBytes(s);
          return s.backends.all.flatMap((b): Sample[] => {
            const o = open.get(b);
            const labels = { service: s.name, backend: b.name };
            return [
              {
                value: b.bytesToBackend + (o?.to ?? 0),
                labels: { ...labels, direction: 'to-backend' },
              },
              {
                value: b.bytesFromBackend + (o?.from ?? 0),
                labels: { ...labels, direction: 'from-backend' },
              },
            ];
          });
        }),
    ),
  ];
}
