import type { Backend } from '../backend/backend.js';

/** What a strategy may look at for one pick. Owned and reused by the session: no allocation per pick. */
export interface PickContext {
  /** The client's address (IP only), for hashing strategies. */
  clientIp: string;
  /** Backends this session already tried; skipped while an untried candidate exists. */
  readonly tried: readonly Backend[];
}

/**
 * Picks a backend from the candidates BackendSet hands it. Pure apart from its
 * own rotation state, and allocation-free in `pick`.
 */
export interface Strategy {
  /** Called whenever the candidate list, or a weight in it, changes. Rebuild any tables here. */
  update(candidates: readonly Backend[]): void;
  /** A candidate, or undefined when there are none. */
  pick(ctx: PickContext): Backend | undefined;
}

export function wasTried(ctx: PickContext, b: Backend): boolean {
  const t = ctx.tried;
  for (let i = 0; i < t.length; i++) if (t[i] === b) return true;
  return false;
}
