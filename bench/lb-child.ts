/**
 * Runs blitz-lb in a child process for the bench, from a config object given
 * as JSON in argv[2]. Reports its port over IPC, then answers 'stats' requests
 * with counters and the accept-to-ready histograms read straight from the
 * balancer (the admin server is not needed for that).
 */
import { parseConfig } from '../src/config/schema.js';
import { LoadBalancer } from '../src/load-balancer.js';

const raw = JSON.parse(process.argv[2] ?? '{}') as Record<string, unknown>;
const lb = new LoadBalancer(parseConfig(raw, { source: '<bench>', allowEphemeralListen: true }));
await lb.start();
const svc = lb.service('bench');
const send = (m: unknown): void => {
  process.send?.(m);
};
send({ type: 'ready', port: lb.address('bench').port });
process.on('message', (m: { type: string }) => {
  if (m.type !== 'stats') return;
  const h = (x: typeof svc.connectLatency.hit) => ({
    count: x.count,
    sum: x.sum,
    bounds: x.bounds,
    counts: [...x.counts],
  });
  send({
    type: 'stats',
    counters: svc.counters,
    pool: svc.pool.counters,
    hit: h(svc.connectLatency.hit),
    miss: h(svc.connectLatency.miss),
  });
});
process.on('disconnect', () => {
  void lb.close(0).then(() => process.exit(0));
});
