import type { AllDownPolicy } from '../config/schema.js';
import type { Backend } from './backend.js';

/**
 * What strategies pick from: healthy (or half-open, trial not yet taken)
 * primaries that are not draining or disabled; if none, such backups; if none
 * and all_down = "try-all", every backend not draining or disabled (a health
 * verdict can be stale, a dial is cheap); else nothing. A backend at weight 0
 * is soft-stopped (HAProxy's weight 0): it takes no new session in any case.
 */
export function candidatesOf(list: readonly Backend[], allDown: AllDownPolicy): Backend[] {
  const inRotation = (b: Backend): boolean => !b.draining && !b.disabled && b.weight > 0;
  const usable = (b: Backend): boolean =>
    inRotation(b) && (b.healthy || (b.halfOpen && !b.trialInFlight));
  let c = list.filter((b) => usable(b) && !b.backup);
  if (c.length === 0) c = list.filter((b) => usable(b) && b.backup);
  if (c.length === 0 && allDown === 'try-all') c = list.filter(inRotation);
  return c;
}

/** The same backends in the same order, each at the weight it had: strategies have nothing to rebuild. */
export function sameCandidates(
  next: readonly Backend[],
  prev: readonly Backend[],
  weights: readonly number[],
): boolean {
  if (next.length !== prev.length) return false;
  for (let i = 0; i < next.length; i++) {
    const b = next[i] as Backend;
    if (b !== prev[i] || b.weight !== weights[i]) return false;
  }
  return true;
}
