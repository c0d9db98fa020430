import type { EvictionCause } from './backend-pool.js';
import type { EarlyCause } from './idle-deaths.js';

/** Plain counters, read by metrics at scrape time. */
export interface PoolCounters {
  hits: number;
  misses: number;
  refills: number;
  refillFailures: number;
  evictions: Record<EvictionCause, number>;
  /** Idle sockets the backend closed, reset or flooded young (see WarmPool); counted as refill failures too. */
  earlyCloses: Record<EarlyCause, number>;
}
