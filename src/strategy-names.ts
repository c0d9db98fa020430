/** The strategy names, in a leaf module: the config schema validates against them without importing any strategy. */
export const STRATEGY_NAMES = Object.freeze([
  'round-robin',
  'least-connections',
  'random-two',
  'ip-hash',
  'least-latency',
] as const);

export type StrategyName = (typeof STRATEGY_NAMES)[number];
