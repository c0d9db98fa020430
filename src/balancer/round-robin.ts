import { type Backend, effectiveWeight } from '../backend/backend.js';
import { eligible, mustSkipTried, type PickContext, type Strategy } from './strategy.js';

/**
 * Smooth weighted round-robin, as nginx does it: each pick adds every
 * candidate's weight to its running score, takes the highest, and subtracts
 * the total from the winner. Weights 5,1,1 give a a b a c a a, not a a a a a b c.
 */
export class RoundRobin implements Strategy {
  private cands: readonly Backend[] = [];
  private current = new Float64Array(0);

  /** `phase`: which candidate wins the first tie (see StrategyOptions.phase). */
  constructor(private readonly phase = 0) {}

  update(candidates: readonly Backend[]): void {
    this.cands = candidates;
    this.current = new Float64Array(candidates.length);
    // A head start far below any weight: it only breaks the first tie.
    if (this.phase > 0 && candidates.length > 0)
      this.current[this.phase % candidates.length] = 1e-6;
  }

  pick(ctx: PickContext): Backend | undefined {
    const n = this.cands.length;
    const skipTried = mustSkipTried(ctx, this.cands);
    let best = -1;
    let total = 0;
    const cur = this.current;
    for (let i = 0; i < n; i++) {
      const b = this.cands[i] as Backend;
      if (!eligible(ctx, b, skipTried)) continue;
      const w = effectiveWeight(b, ctx.now);
      cur[i] = (cur[i] as number) + w;
      total += w;
      if (best < 0 || (cur[i] as number) > (cur[best] as number)) best = i;
    }
    if (best < 0) return undefined;
    cur[best] = (cur[best] as number) - total;
    return this.cands[best];
  }
}
