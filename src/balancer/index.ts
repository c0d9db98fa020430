import { IpHash } from './ip-hash.js';
import { LeastConnections } from './least-connections.js';
import { RandomTwo, type Rng } from './random-two.js';
import { RoundRobin } from './round-robin.js';
import type { Strategy } from './strategy.js';

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
}

const FACTORIES = {
  'round-robin': (o: StrategyOptions): Strategy => new RoundRobin(o.phase),
  'least-connections': (): Strategy => new LeastConnections(),
  'random-two': (o: StrategyOptions): Strategy => new RandomTwo(o.rng),
  'ip-hash': (): Strategy => new IpHash(),
} as const;

export type StrategyName = keyof typeof FACTORIES;
export const STRATEGY_NAMES = Object.freeze(Object.keys(FACTORIES) as StrategyName[]);

export function createStrategy(name: StrategyName, opts: StrategyOptions = {}): Strategy {
  return FACTORIES[name](opts);
}
