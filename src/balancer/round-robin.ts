import type { Backend } from '../backend/backend.js';
import { type PickContext, type Strategy, wasTried } from './strategy.js';

/**
 * Smooth weighted round-robin, as nginx does it: each pick adds every
 * candidate's weight to its running score, takes the highest, and subtracts
 * the total from the winner. Weights 5,1,1 give a a b a c a a, not a a a a a b c.
 */
export class RoundRobin implements Strategy {
  private cands: readonly Backend[] = [];
  private current = new Float64Array(0);

  update(candidates: readonly Backend[]): void {
    this.cands = candidates;
    this.current = new Float64Array(candidates.length);
  }

  pick(ctx: PickContext): Backend | undefined {
    const n = this.cands.length;
    if (n === 0) return undefined;
    let skipTried = false;
    if (ctx.tried.length > 0) {
      for (let i = 0; i < n; i++) {
        if (!wasTried(ctx, this.cands[i] as Backend)) {
          skipTried = true;
          break;
        }
      }
    }
    let best = -1;
    let total = 0;
    const cur = this.current;
    for (let i = 0; i < n; i++) {
      const b = this.cands[i] as Backend;
      if (skipTried && wasTried(ctx, b)) continue;
      cur[i] = (cur[i] as number) + b.weight;
      total += b.weight;
      if (best < 0 || (cur[i] as number) > (cur[best] as number)) best = i;
    }
    cur[best] = (cur[best] as number) - total;
    return this.cands[best];
  }
}
