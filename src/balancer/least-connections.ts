import { type Backend, effectiveWeight } from '../backend/backend.js';
import { eligible, mustSkipTried, type PickContext, type Strategy } from './strategy.js';

/**
 * The fewest open sessions relative to weight (active / weight). Ties go
 * round-robin: the scan starts one place further each pick, and only a
 * strictly lower load displaces the first tied backend found.
 */
export class LeastConnections implements Strategy {
  private cands: readonly Backend[] = [];
  private start = 0;

  update(candidates: readonly Backend[]): void {
    this.cands = candidates;
    this.start = 0;
  }

  pick(ctx: PickContext): Backend | undefined {
    const n = this.cands.length;
    if (n === 0) return undefined;
    const skipTried = mustSkipTried(ctx, this.cands);
    let best: Backend | undefined;
    let bestLoad = Number.POSITIVE_INFINITY;
    let bestAt = 0;
    for (let k = 0; k < n; k++) {
      const i = (this.start + k) % n;
      const b = this.cands[i] as Backend;
      if (!eligible(ctx, b, skipTried)) continue;
      const load = b.active / effectiveWeight(b, ctx.now);
      if (load < bestLoad) {
        bestLoad = load;
        best = b;
        bestAt = i;
      }
    }
    if (best) this.start = (bestAt + 1) % n;
    return best;
  }
}
