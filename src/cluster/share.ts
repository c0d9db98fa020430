import { type BackendConfig, type Config, NO_SHARE, type ServiceConfig } from '../config/schema.js';

/**
 * Worker `slot`'s (1..n) share of a total: floor(total / n), plus one in the
 * first (total mod n) slots, so the n shares sum to the total exactly. A
 * worker whose share is nothing gets NO_SHARE, since 0 means "no limit". A
 * total of 0 stays 0 (no limit; for queue_size, no queue).
 */
export function shareOf(total: number, n: number, slot: number): number {
  if (total <= 0 || n <= 1) return total;
  const s = Math.floor(total / n) + (slot <= total % n ? 1 : 0);
  return s > 0 ? s : NO_SHARE;
}

/** Worker `slot`'s share of one backend's limits (a listed or a discovered backend). */
export function backendShare(b: BackendConfig, n: number, slot: number): BackendConfig {
  if (n <= 1) return b;
  return {
    ...b,
    maxConnections: shareOf(b.maxConnections, n, slot),
    maxRate: shareOf(b.maxRate, n, slot),
  };
}

/**
 * Worker `slot`'s (1..n) share of the configured limits. Limits are totals
 * for the balancer, but each worker counts only its own sessions, so each
 * enforces its share (shareOf) of max_connections, queue_size, the
 * per-source limits and each backend's max_connections and max_rate: the
 * shares of a limit add up to it, never more. Extra units go to the lowest
 * slots for every limit alike, so the worker that holds a scarce service slot
 * also holds the backend slot and queue place to use it. The cost is refusing
 * early when accept is uneven; when a limit is below N, workers above it take
 * nothing under that limit (see NO_SHARE).
 */
export function workerShare(config: Config, n: number, slot: number): Config {
  if (n <= 1) return config;
  const share = (v: number): number => shareOf(v, n, slot);
  const backend = (b: BackendConfig): BackendConfig => backendShare(b, n, slot);
  const service = (s: ServiceConfig): ServiceConfig => ({
    ...s,
    maxConnections: share(s.maxConnections),
    queueSize: share(s.queueSize),
    maxConnectionsPerSource: share(s.maxConnectionsPerSource),
    maxRatePerSource: share(s.maxRatePerSource),
    // Bytes a second a client address shares: each worker holds its share (a session's own rate is whole).
    uploadRatePerSource: share(s.uploadRatePerSource),
    downloadRatePerSource: share(s.downloadRatePerSource),
    backends: s.backends.map(backend),
  });
  return { ...config, services: config.services.map(service) };
}
