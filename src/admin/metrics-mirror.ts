import type { LoadBalancer } from '../load-balancer.js';
import { MIRROR_DROPS, type MirrorCounters } from '../proxy/mirror.js';
import type { Service } from '../service.js';
import { P, type Sample, ScrapeMetric } from './scrape-metric.js';

/** A service's mirror counters, or null: one never configured with [mirror] (and has none counted) has no series. */
function countersOf(s: Service): MirrorCounters | null {
  const m = s.data?.sessions.mirroring.counters ?? null;
  if (m === null) return null;
  return s.cfg.mirror !== null || m.sessions > 0 ? m : null;
}

function perMirror(lb: LoadBalancer, f: (m: MirrorCounters) => number): () => Sample[] {
  return () => {
    const out: Sample[] = [];
    for (const s of lb.allServices) {
      const m = countersOf(s);
      if (m !== null) out.push({ value: f(m), labels: { service: s.name } });
    }
    return out;
  };
}

/** [mirror]: sessions copied to the shadow backend, bytes, and mirror connections given up by cause. */
export function mirrorMetrics(lb: LoadBalancer): ScrapeMetric[] {
  return [
    new ScrapeMetric(
      `${P}mirror_sessions_total`,
      'Sessions sampled for [mirror]: a mirror connection was opened beside the real one.',
      'counter',
      perMirror(lb, (m) => m.sessions),
    ),
    new ScrapeMetric(
      `${P}mirror_bytes_total`,
      'Client bytes (and PROXY headers) written to mirror connections, counted as each closes.',
      'counter',
      perMirror(lb, (m) => m.bytes),
    ),
    new ScrapeMetric(
      `${P}mirror_drops_total`,
      'Mirror connections given up (the session went on): buffer-full (more than buffer unsent), connect-failed, reset (an error or reset from the mirror), unfinished (still holding bytes 5 s after its session ended).',
      'counter',
      () => {
        const out: Sample[] = [];
        for (const s of lb.allServices) {
          const m = countersOf(s);
          if (m === null) continue;
          for (const cause of MIRROR_DROPS)
            out.push({ value: m.drops[cause], labels: { service: s.name, cause } });
        }
        return out;
      },
    ),
  ];
}
