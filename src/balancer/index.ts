import { RoundRobin } from './round-robin.js';
import type { Strategy } from './strategy.js';

export type { PickContext, Strategy } from './strategy.js';

const FACTORIES = {
  'round-robin': (): Strategy => new RoundRobin(),
} as const;

export type StrategyName = keyof typeof FACTORIES;
export const STRATEGY_NAMES = Object.freeze(Object.keys(FACTORIES) as StrategyName[]);

export function createStrategy(name: StrategyName): Strategy {
  return FACTORIES[name]();
}
