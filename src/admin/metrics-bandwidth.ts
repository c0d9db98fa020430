import type { LoadBalancer } from '../load-balancer.js';
import type { Bandwidth } from '../proxy/bandwidth.js';
import type { Service } from '../service.js';
import { P, type Sample, ScrapeMetric } from './scrape-metric.js';

/** A service's bandwidth state, or null: one without a rate (and nothing paused yet) has no series. */
function bandwidthOf(s: Service): Bandwidth | null {
  const bw = s.data?.sessions.bandwidth ?? null;
  if (bw === null) return null;
  const c = s.cfg;
  const limited =
    c.uploadRate > 0 ||
    c.downloadRate > 0 ||
    c.uploadRatePerSource > 0 ||
    c.downloadRatePerSource > 0;
  return limited || bw.pauses.upload + bw.pauses.download > 0 ? bw : null;
}

function perService(lb: LoadBalancer, f: (bw: Bandwidth, s: Service) => Sample[]): () => Sample[] {
  return () =>
    lb.allServices.flatMap((s) => {
      const bw = bandwidthOf(s);
      return bw === null ? [] : f(bw, s);
    });
}

/** upload_rate / download_rate (and per source): how often a side was held for its limit. */
export function bandwidthMetrics(lb: LoadBalancer): ScrapeMetric[] {
  return [
    new ScrapeMetric(
      `${P}bandwidth_pauses_total`,
      'Times a side of a rate-limited session stopped being read for its limit (upload: the client, download: the backend).',
      'counter',
      perService(lb, (bw, s) => [
        { value: bw.pauses.upload, labels: { service: s.name, direction: 'upload' } },
        { value: bw.pauses.download, labels: { service: s.name, direction: 'download' } },
      ]),
    ),
    new ScrapeMetric(
      `${P}bandwidth_paused_sessions`,
      'Rate-limited sessions with a side held for its limit now.',
      'gauge',
      perService(lb, (bw, s) => [{ value: bw.pausedCount, labels: { service: s.name } }]),
    ),
  ];
}
