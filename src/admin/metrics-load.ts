import type { Backend } from '../backend/backend.js';
import { DIAL_CAUSES } from '../backend/causes.js';
import type { LoadBalancer } from '../load-balancer.js';
import type { Service } from '../service.js';
import { P, perService, type Sample, ScrapeMetric } from './scrape-metric.js';

/** The window the session rate is averaged over. */
const RATE_WINDOW_MS = 10_000;

/**
 * New sessions a second over the last RATE_WINDOW_MS, from readings of the
 * accepted counter taken at scrape time: nothing on the hot path, no timer.
 */
class RateWindow {
  private readings: { at: number; count: number }[] = [];

  read(now: number, count: number): number {
    const r = this.readings;
    r.push({ at: now, count });
    while (r.length > 2 && now - (r[1] as { at: number }).at >= RATE_WINDOW_MS) r.shift();
    const first = r[0] as { at: number; count: number };
    const secs = (now - first.at) / 1000;
    return secs > 0 ? (count - first.count) / secs : 0;
  }
}

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
 * queue, the session rate, dial failures by cause and bytes carried
 * including those of sessions still open.
 */
export function loadMetrics(lb: LoadBalancer): ScrapeMetric[] {
  const rates = new WeakMap<Service, RateWindow>();
  return [
    new ScrapeMetric(
      `${P}queue_length`,
      'Clients waiting now for a backend slot (every backend at its max_connections or max_rate).',
      'gauge',
      perService(lb, (s) => s.queueNow().length),
    ),
    new ScrapeMetric(
      `${P}queue_longest_wait_seconds`,
      'How long the longest-waiting client has waited so far (0: nobody waits).',
      'gauge',
      perService(lb, (s) => s.queueNow().longestWaitMs / 1000),
      'max',
    ),
    new ScrapeMetric(
      `${P}session_rate`,
      'New client connections a second, averaged over the last 10 s (between scrapes).',
      'gauge',
      perService(lb, (s) => {
        let w = rates.get(s);
        if (!w) {
          w = new RateWindow();
          rates.set(s, w);
        }
        return w.read(s.clock.now(), s.counters.accepted);
      }),
    ),
    new ScrapeMetric(
      `${P}dial_failures_total`,
      'Failed backend connects (live dials and pool refills) by cause: refused, timeout, reset, tls, local (the balancer’s own EMFILE, EADDRNOTAVAIL…: not held against the backend), other.',
      'counter',
      () =>
        lb.allServices.flatMap((s) =>
          s.backends.all.flatMap((b) =>
            DIAL_CAUSES.map((cause) => ({
              value: b.dialFailures[cause],
              labels: { service: s.name, backend: b.address, cause },
            })),
          ),
        ),
    ),
    new ScrapeMetric(
      `${P}bytes_total`,
      'Bytes carried to and from each backend, open sessions included (their sockets are read at scrape time).',
      'counter',
      () =>
        lb.allServices.flatMap((s) => {
          const open = openBytes(s);
          return s.backends.all.flatMap((b): Sample[] => {
            const o = open.get(b);
            const labels = { service: s.name, backend: b.address };
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
