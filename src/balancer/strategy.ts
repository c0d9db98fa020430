import { type Backend, isAvailable } from '../backend/backend.js';

/** What a strategy may look at for one pick. Owned and reused by the session: no allocation per pick. */
export interface PickContext {
  /** The client's address (IP only), for hashing strategies. */
  clientIp: string;
  /** Backends this session already tried; skipped while an untried candidate exists. */
  readonly tried: readonly Backend[];
  /** Clock ms (monotonic) at the pick, for slow start and max_rate. */
  now: number;
}

/**
 * Picks a backend from the candidates BackendSet hands it (healthy, not
 * draining). Pure apart from its own rotation state, and allocation-free in
 * `pick`. It skips backends at their max_connections or max_rate, and
 * returns undefined when none is available.
 */
export interface Strategy {
  /**
   * Called whenever the candidate list, or a weight in it, changes. Rebuild any tables here, or
   * (when a build is costly) at the next pick, so a burst of changes costs one build; a pick must
   * never use state older than the last `update`.
   */
  update(candidates: readonly Backend[]): void;
  pick(ctx: PickContext): Backend | undefined;
  /**
   * Whether this dial has no candidate at all, though the service has some
   * (a route's group: see balancer/routed.ts); absent: never. Asked only
   * after a pick found nothing.
   */
  emptyFor?(ctx: PickContext): boolean;
  /**
   * The candidate at `address` for this dial, or undefined when it is none
   * here (a route's group lacks it): a stick table asks before it keeps a
   * client on its remembered backend. Absent: every candidate of the service.
   */
  candidateAt?(ctx: PickContext, address: string): Backend | undefined;

  /**
   * A latency measured to `b` (ms, at clock ms `now`): a fresh connect's time,
   * or an lb.request() answer's time to headers. Only a latency-aware strategy
   * (least-latency) has it; callers check for it, so others pay one property read.
   */
  observe?(b: Backend, ms: number, now: number): void;
}

export function wasTried(ctx: PickContext, b: Backend): boolean {
  const t = ctx.tried;
  for (let i = 0; i < t.length; i++) if (t[i] === b) return true;
  return false;
}

/**
 * Whether the pick must skip tried backends: true when an available candidate
 * not yet tried exists. Otherwise retries may go back to a tried one.
 */
export function mustSkipTried(ctx: PickContext, cands: readonly Backend[]): boolean {
  if (ctx.tried.length === 0) return false;
  for (let i = 0; i < cands.length; i++) {
    const b = cands[i] as Backend;
    if (!wasTried(ctx, b) && isAvailable(b, ctx.now)) return true;
  }
  return false;
}

/** Eligible for this pick: available now, and untried when `skipTried`. */
export function eligible(ctx: PickContext, b: Backend, skipTried: boolean): boolean {
  return isAvailable(b, ctx.now) && !(skipTried && wasTried(ctx, b));
}
