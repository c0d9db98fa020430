/**
 * Runs blitz-lb in a child process for the bench, from a config object given
 * as JSON in argv[2] (one service named "bench"). Reports its port over IPC,
 * then answers 'stats' requests with counters and the accept-to-ready
 * histograms read straight from the balancer.
 */
import { readdirSync } from 'node:fs';
import { parseConfig } from '../src/config/schema.js';
import type { Histogram } from '../src/histogram.js';
import { LoadBalancer } from '../src/load-balancer.js';

const raw = JSON.parse(process.argv[2] ?? '{}') as Record<string, unknown>;
const lb = new LoadBalancer(parseConfig(raw, { source: '<bench>', allowEphemeralListen: true }));
await lb.start();
const svc = lb.service('bench');
const send = (m: unknown): void => {
  process.send?.(m);
};
const snap = (x: Histogram) => ({
  count: x.count,
  sum: x.sum,
  bounds: x.bounds,
  counts: [...x.counts],
});
send({ type: 'ready', port: lb.address('bench').port });
process.on('message', (m: { type: string }) => {
  if (m.type !== 'stats') return;
  send({
    type: 'stats',
    counters: svc.counters,
    pool: svc.pool.counters,
    backends: svc.backends.all.map((b) => ({
      address: b.address,
      active: b.active,
      up: b.healthy,
      aborted: b.sessionsAbortedTotal,
    })),
    rss: process.memoryUsage().rss,
    fds: readdirSync('/proc/self/fd').length,
    hit: snap(svc.stats.connectLatency.hit),
    miss: snap(svc.stats.connectLatency.miss),
  });
});
process.on('disconnect', () => {
  void lb.close(0).then(() => process.exit(0));
});
