import type { LoadBalancer } from '../load-balancer.js';
import { gauge, type ScrapeMetric } from './scrape-metric.js';

/**
 * When each certificate this balancer terminates TLS with stops being valid,
 * for an alert some weeks ahead (examples/prometheus-alerts.yml). Read where
 * the certificates are loaded (the one process, or each worker, all with the
 * same files: 'first' rather than a sum).
 */
export function tlsMetrics(lb: LoadBalancer): ScrapeMetric[] {
  return [
    gauge(
      'tls_certificate_expiry_timestamp_seconds',
      'Unix time at which a certificate of [services.NAME.tls] expires (its notAfter), per service and certificate file.',
      () =>
        lb.allServices.flatMap((s) =>
          s.certificates.map((c) => ({
            value: Math.floor(new Date(c.x509.validTo).getTime() / 1000),
            labels: { service: s.name, certificate: c.certFile },
          })),
        ),
      'first',
    ),
  ];
}
