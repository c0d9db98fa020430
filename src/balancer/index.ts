import { IpHash } from './ip-hash.js';
import { LeastConnections } from './least-connections.js';
import { LeastLatency } from './least-latency.js';
import { DEFAULT_LATENCY_DECAY_MS } from './least-latency-defaults.js';
import type { StrategyName } from './names.js';
import { RandomTwo, type Rng } from './random-two.js';
import { RoundRobin } from './round-robin.js';
import type { Strategy } from './strategy.js';

export { STRATEGY_NAMES, type StrategyName } from './names.js';
export type { PickContext, Strategy } from './strategy.js';

export interface StrategyOptions {
  /** Randomness for random-two; Math.random unless a test seeds it. */
  rng?: Rng;
  /**
   * Round-robin's starting point (a cluster worker's number). Each worker
   * runs its own rotation; without a phase, N workers that each take one
   * connection would all send it to the first backend.
   */
  phase?: number;
  /** ip-hash: bounded loads, a backend takes at most this % of the average (0: off). */
  hashBalanceFactor?: number;
  /** least-latency: the decay time constant of its latency estimates (latency_decay, ms). */
  latencyDecayMs?: number;
}

/** One factory per name: the type makes the compiler reject a strategy name without one. */
const FACTORIES: { readonly [K in StrategyName]: (o: StrategyOptions) => Strategy } = {
  'round-robin': (o) => new RoundRobin(o.phase),
  'least-connections': () => new LeastConnections(),
  'random-two': (o) => new RandomTwo(o.rng),
  'ip-hash': (o) => new IpHash(undefined, o.hashBalanceFactor ?? 0),
  'least-latency': (o) => new LeastLatency(o.latencyDecayMs ?? DEFAULT_LATENCY_DECAY_MS, o.rng),
};

export function createStrategy(name: StrategyName, opts: StrategyOptions = {}): Strategy {
  return FACTORIES[name](opts);
}
