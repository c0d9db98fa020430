import type { BackendSet } from '../backend/backend-set.js';
import type { Strategy } from '../balancer/strategy.js';
import type { Clock } from '../clock.js';
import type { ServiceConfig } from '../config/schema.js';
import type { LocalErrors } from '../local-errors.js';
import type { WarmPool } from '../pool/warm-pool.js';
import type { Connector } from '../upstream/connector.js';
import type { HttpStats } from './stats.js';

/**
 * What the HTTP client reads from its service (a Service): read on every
 * request and connect, so a reload's strategy, timeouts, retries, TLS and
 * pool take effect at once.
 */
export interface HttpHost {
  readonly cfg: ServiceConfig;
  readonly backends: BackendSet;
  readonly strategy: Strategy;
  readonly pool: WarmPool;
  /** The service's connector (connect_timeout, backend_tls). */
  readonly connector: Connector;
  readonly clock: Clock;
  readonly localErrors: LocalErrors;
  readonly httpStats: HttpStats;
}
