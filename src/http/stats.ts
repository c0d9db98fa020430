import type { Backend } from '../backend/backend.js';
import { Histogram } from '../histogram.js';

/** Request latency buckets (seconds): 1 ms to 30 s, past the 5 s request_timeout default. */
export const REQUEST_BUCKETS = Object.freeze([
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
]);

/**
 * One backend's HTTP requests (lb.request and lb.dispatcher), apart from its
 * layer-4 session counters. Every request sent to it ends as exactly one
 * success (an answer below 500) or one failure (an error, a timeout, an
 * abort, or a 5xx), so requests = successes + failures + in flight.
 */
export class HttpBackendStats {
  requests = 0;
  successes = 0;
  failures = 0;
  readonly latency = new Histogram(REQUEST_BUCKETS);
}

/** A service's HTTP request statistics: per backend, made at its first request, plus retries. */
export class HttpStats {
  /** Requests sent again to another backend (a failed connect, or a reset before any answer). */
  retries = 0;
  private readonly byBackend = new WeakMap<Backend, HttpBackendStats>();

  /** null: no request ever went to `b`. */
  of(b: Backend): HttpBackendStats | null {
    return this.byBackend.get(b) ?? null;
  }

  for(b: Backend): HttpBackendStats {
    let s = this.byBackend.get(b);
    if (!s) {
      s = new HttpBackendStats();
      this.byBackend.set(b, s);
    }
    return s;
  }
}
