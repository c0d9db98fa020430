import { isDeepStrictEqual } from 'node:util';
import { type Backend, entryOf } from './backend.js';
import type { ConnectFailure, DialCause } from './causes.js';

/*
 * How a cluster worker's BackendSet follows the primary's. Part of the
 * backend state owner: BackendSet installs these and alone calls them.
 */

/**
 * A cluster worker's set follows the primary's: it reports what its dials see
 * and takes health verdicts from `applyState`, never deciding them itself.
 */
export interface Follower {
  /** `cause`: the failure's detail; `kind` its class, so the primary counts it as the worker saw it. */
  dialFailed(b: Backend, cause: string, kind: DialCause): void;
  dialSucceeded(b: Backend): void;
}

/** Who judges live dial outcomes: this set (rise/fall, circuit), or a primary it follows. */
export interface DialJudge {
  failed(b: Backend, failure: ConnectFailure): void;
  succeeded(b: Backend): void;
}

/** Only news goes to the primary: its own rise/fall and circuit logic decide. */
export function reportTo(f: Follower): DialJudge {
  return {
    failed(b, failure) {
      entryOf(b).consecutiveFailures++;
      // The primary acts on a failure only while the backend is up or on trial: a backend
      // already down (all_down = "try-all" dials it anyway) would only flood the channel.
      if (!b.removed && (b.healthy || b.halfOpen)) f.dialFailed(b, failure.detail, failure.kind);
    },
    succeeded(b) {
      // The end of a failure streak, or a half-open trial's success.
      if (b.consecutiveFailures > 0 || b.halfOpen) f.dialSucceeded(b);
      entryOf(b).consecutiveFailures = 0;
    },
  };
}

/** The primary's word on one backend (the snapshot it broadcasts). */
export function stateOf(b: Backend): BackendState {
  return {
    address: b.address,
    healthy: b.healthy,
    halfOpen: b.halfOpen,
    draining: b.draining,
    disabled: b.disabled,
    weight: b.weight,
    downReason: b.downReason,
  };
}

/** What the primary tells each worker about one backend. */
export interface BackendState {
  address: string;
  healthy: boolean;
  halfOpen: boolean;
  draining: boolean;
  disabled: boolean;
  weight: number;
  downReason: string | null;
}

/** Whether a backend already matches the primary's word on it (applyState skips it then). */
export function sameState(b: Backend, st: BackendState): boolean {
  return isDeepStrictEqual(stateOf(b), st);
}
