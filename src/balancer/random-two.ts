import { type Backend, effectiveWeight } from '../backend/backend.js';
import { eligible, mustSkipTried, type PickContext, type Strategy } from './strategy.js';

/** Uniform in [0, 1). Passed in so tests can seed it. */
export type Rng = () => number;

/**
 * Power of two choices: draw two distinct eligible backends, each with
 * probability proportional to its weight, and take the one with fewer open
 * sessions (the first drawn on a tie). Two linear passes per pick over the
 * candidates, no allocation.
 */
export class RandomTwo implements Strategy {
  private cands: readonly Backend[] = [];

  constructor(private readonly rng: Rng = Math.random) {}

  update(candidates: readonly Backend[]): void {
    this.cands = candidates;
  }

  pick(ctx: PickContext): Backend | undefined {
    const skipTried = mustSkipTried(ctx, this.cands);
    const first = this.draw(ctx, skipTried, undefined);
    if (!first) return undefined;
    const second = this.draw(ctx, skipTried, first);
    if (!second) return first;
    return second.active < first.active ? second : first;
  }

  /** One weighted draw among eligible candidates, leaving out `except`. */
  private draw(
    ctx: PickContext,
    skipTried: boolean,
    except: Backend | undefined,
  ): Backend | undefined {
    const c = this.cands;
    let total = 0;
    for (let i = 0; i < c.length; i++) {
      const b = c[i] as Backend;
      if (b !== except && eligible(ctx, b, skipTried)) total += effectiveWeight(b, ctx.now);
    }
    if (total === 0) return undefined;
    let r = this.rng() * total;
    let last: Backend | undefined;
    for (let i = 0; i < c.length; i++) {
      const b = c[i] as Backend;
      if (b === except || !eligible(ctx, b, skipTried)) continue;
      last = b;
      r -= effectiveWeight(b, ctx.now);
      if (r < 0) return b;
    }
    return last;
  }
}
