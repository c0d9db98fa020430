import type { BackendConfig, Config, ServiceConfig } from '../config/schema.js';

/**
 * A worker's share of the configured limits. Limits are totals for the
 * balancer, but each worker counts only its own sessions, so each enforces
 * ceil(limit / N) (rates: limit / N, at least 1 a second): together they never
 * exceed the total. The cost is refusing a little early when accept is
 * uneven across workers. 0 (no limit) stays 0.
 */
export function workerShare(config: Config, n: number): Config {
  if (n <= 1) return config;
  const count = (v: number): number => (v > 0 ? Math.ceil(v / n) : 0);
  const rate = (v: number): number => (v > 0 ? Math.max(1, v / n) : 0);
  const backend = (b: BackendConfig): BackendConfig => ({
    ...b,
    maxConnections: count(b.maxConnections),
    maxRate: rate(b.maxRate),
  });
  const service = (s: ServiceConfig): ServiceConfig => ({
    ...s,
    maxConnections: count(s.maxConnections),
    queueSize: count(s.queueSize),
    maxConnectionsPerSource: count(s.maxConnectionsPerSource),
    maxRatePerSource: rate(s.maxRatePerSource),
    backends: s.backends.map(backend),
  });
  return { ...config, services: config.services.map(service) };
}
