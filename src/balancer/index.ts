import { IpHash } from './ip-hash.js';
import { LeastConnections } from './least-connections.js';
import { RandomTwo, type Rng } from './random-two.js';
import { RoundRobin } from './round-robin.js';
import type { Strategy } from './strategy.js';

export type { PickContext, Strategy } from './strategy.js';

export interface StrategyOptions {
  /** Randomness for random-two; Math.random unless a test seeds it. */
  rng?: Rng;
}

const FACTORIES = {
  'round-robin': (): Strategy => new RoundRobin(),
  'least-connections': (): Strategy => new LeastConnections(),
  'random-two': (o: StrategyOptions): Strategy => new RandomTwo(o.rng),
  'ip-hash': (): Strategy => new IpHash(),
} as const;

export type StrategyName = keyof typeof FACTORIES;
export const STRATEGY_NAMES = Object.freeze(Object.keys(FACTORIES) as StrategyName[]);

export function createStrategy(name: StrategyName, opts: StrategyOptions = {}): Strategy {
  return FACTORIES[name](opts);
}
