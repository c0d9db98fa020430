/** How long a "none left" answer stands before a refused source's next accept asks Redis again. */
export const FULL_RETRY_MS = 100;

/** One source's share of the group's limits, as this instance holds it. */
export interface SourceLease {
  /** Sessions open here. */
  active: number;
  /** Connection slots Redis granted this instance (>= active while Redis decides). */
  leased: number;
  /** Clock ms until which Redis's "none left" stands (asked again after; a session ending here clears it). */
  fullUntil: number;
  /** The second (epoch) whose rate tokens `tokens` are. */
  win: number;
  tokens: number;
  /** Accepts held by the gate for this source now: what a lease call asks for. */
  demand: number;
  /** The last call for this source failed: decide locally until one succeeds. */
  local: boolean;
  /** Local fallback bucket (limit ÷ N a second). */
  localTokens: number;
  localAt: number;
}

/** A source new to this instance: nothing leased, a full local bucket of `localTokens`. */
export function newLease(localTokens: number, now: number): SourceLease {
  return {
    active: 0,
    leased: 0,
    fullUntil: 0,
    demand: 0,
    win: 0,
    tokens: 0,
    local: false,
    localTokens,
    localAt: now,
  };
}

/** The rate window: one second of wall time (the same on every instance). */
export function epochSecond(): number {
  return Math.floor(Date.now() / 1000);
}
