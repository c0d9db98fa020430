import type { ReloadSummary } from '../load-balancer.js';

/** The last reload and how it went, for /api/info and /metrics. */
export interface ReloadRecord {
  /** Wall-clock ms of the last attempt (null: none since start). */
  at: number | null;
  ok: boolean;
  /** Why the last attempt failed (null when it did not). */
  error: string | null;
  summary: ReloadSummary | null;
  /** Wall-clock ms of the last success, or of the start (the config loaded then counts). */
  lastSuccessAt: number;
}

/**
 * Records every reload, SIGHUP's and POST /api/reload's alike: the caller
 * wraps its reload function once (`track`) and hands this to the admin server.
 */
export class ReloadLog {
  readonly last: ReloadRecord = {
    at: null,
    ok: true,
    error: null,
    summary: null,
    lastSuccessAt: Date.now(),
  };

  track(reload: () => Promise<ReloadSummary>): () => Promise<ReloadSummary> {
    return async () => {
      const at = Date.now();
      try {
        const summary = await reload();
        Object.assign(this.last, { at, ok: true, error: null, summary, lastSuccessAt: at });
        return summary;
      } catch (err) {
        Object.assign(this.last, { at, ok: false, error: (err as Error).message, summary: null });
        throw err;
      }
    };
  }
}
