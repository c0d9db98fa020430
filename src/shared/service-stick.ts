import { createStrategy, type StrategyOptions } from '../balancer/index.js';
import type { Strategy } from '../balancer/strategy.js';
import type { StickConfig } from '../config/stick.js';
import type { ServiceConfig } from '../config/types.js';
import { StickTable } from './stick-table.js';
import { StickyStrategy } from './sticky-strategy.js';

/**
 * The strategy a service picks with, given its `balance` strategy and its
 * [stick] table: the plain strategy without one; with one, the
 * sticky wrapper, reusing `prev`'s table (and its entries) when the service
 * had one, so a reload that keeps the service keeps its clients where they are.
 */
export function stickTo(inner: Strategy, cfg: StickConfig | null, prev: Strategy | null): Strategy {
  if (cfg === null) return inner;
  if (prev instanceof StickyStrategy) {
    prev.table.resize(cfg.size, cfg.expireMs);
    prev.on = cfg.on;
    prev.inner = inner;
    return prev;
  }
  return new StickyStrategy(inner, new StickTable(cfg.expireMs, cfg.size), cfg.on);
}

/** The `balance` strategy under a possible stick table. */
export function balanceOf(s: Strategy): Strategy {
  return s instanceof StickyStrategy ? s.inner : s;
}

/** The service's stick table, or null without [stick]. */
export function stickOf(s: Strategy): StickyStrategy | null {
  return s instanceof StickyStrategy ? s : null;
}

/**
 * The strategy a service picks with for `cfg`: its balance (with the ip-hash
 * factor) behind its stick table, if any. On a reload (`prev` given) the
 * balance is kept unless it or its factor changed (or routes were dropped), and the table with its
 * entries is kept (see stickTo).
 */
export function strategyFor(
  cfg: ServiceConfig,
  opts: StrategyOptions,
  prev: { readonly cfg: ServiceConfig; readonly strategy: Strategy } | null,
): Strategy {
  const rebalance =
    prev === null ||
    prev.cfg.routes.length > 0 ||
    cfg.balance !== prev.cfg.balance ||
    cfg.hashBalanceFactor !== prev.cfg.hashBalanceFactor ||
    cfg.latencyDecayMs !== prev.cfg.latencyDecayMs;
  const inner = rebalance
    ? createStrategy(cfg.balance, {
        ...opts,
        hashBalanceFactor: cfg.hashBalanceFactor,
        latencyDecayMs: cfg.latencyDecayMs,
      })
    : balanceOf(prev.strategy);
  return stickTo(inner, cfg.stick, prev?.strategy ?? null);
}
