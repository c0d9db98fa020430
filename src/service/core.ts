import type { BackendSet, Follower } from '../backend/backend-set.js';
import type { StrategyOptions } from '../balancer/index.js';
import type { Strategy } from '../balancer/strategy.js';
import type { Clock } from '../clock.js';
import type { ServiceConfig } from '../config/schema.js';
import type { HttpStats } from '../http/stats.js';
import type { SocketSource } from '../lifecycle/passed-sockets.js';
import type { LocalErrors } from '../local-errors.js';
import type { Logger } from '../logger.js';
import type { SessionAccounting } from '../proxy/accounting.js';
import type { FdBudget } from '../proxy/fd-budget.js';
import type { RedisLink } from '../shared/redis-link.js';
import type { Connector } from '../upstream/connector.js';

/**
 * What the two halves of a service (data plane, control plane) and its
 * backend operations read from it. `cfg`, `strategy` and `connector` are
 * read on each use, so a reload that replaces them takes effect at once.
 */
export interface ServiceCore {
  readonly name: string;
  readonly cfg: ServiceConfig;
  readonly backends: BackendSet;
  readonly strategy: Strategy;
  readonly connector: Connector;
  readonly log: Logger;
  readonly clock: Clock;
  readonly localErrors: LocalErrors;
  readonly stats: SessionAccounting;
  readonly httpStats: HttpStats;
  /** The process's descriptor reserve, shared by every service (null: not checked). */
  readonly fds: FdBudget | null;
}

/**
 * What a Service does in its process. "single": both halves. With workers,
 * the primary's services are "control" (the control plane: probes, agent,
 * discovery; no listener, no pool) and each worker's are "serve" (the data
 * plane: listener, sessions and pool, with verdicts taken from the primary).
 */
export type ServiceRole = 'single' | 'serve' | 'control';

/** `S`: the service the change hook is given (service.ts's Service). */
export interface ServiceOptionsOf<S> {
  strategy?: StrategyOptions;
  accessLog?: boolean;
  /** [log] access_interval (0: no interim access lines). */
  accessIntervalMs?: number;
  /** This process's worker slot (0 or absent: no workers): access lines name sessions "2.17" as the admin API does. */
  workerSlot?: number;
  role?: ServiceRole;
  clock?: Clock;
  /** The process's descriptor reserve (LoadBalancer makes one per process). */
  fds?: FdBudget | null;
  /** "serve" role: where dial outcomes go (the primary). */
  follower?: (service: string) => Follower;
  /** Called whenever a backend's state changes (the primary broadcasts it). */
  onBackendsChanged?: (svc: S) => void;
  /** Listening sockets given to the process (upgrade, systemd); absent: every address is bound. */
  sockets?: SocketSource;
  /** The process's [cluster] Redis link (null: nothing shared). */
  redis?: RedisLink | null;
}
