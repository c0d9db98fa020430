import type { BackendConfig } from '../config/schema.js';

/** One lookup's result. */
export interface Answer {
  /** The backends found; null: nothing changed since the last good answer (a file not rewritten). */
  readonly backends: readonly BackendConfig[] | null;
  /** Ask again within this long (a record's TTL, clamped by min_ttl / max_ttl); null: `interval`. */
  readonly ttlMs: number | null;
  /** Ask again at once (a Consul blocking query returned news). */
  readonly again?: boolean;
}

/**
 * One kind of discovery: how to look the backends up once. The runner
 * (runner.ts) decides when, keeps the last good list on failure, and counts.
 */
export interface Source {
  /** What is looked up, for logs and /api/services: a name, a URL, a path. */
  readonly target: string;
  /** This lookup's deadline in ms (a blocking query waits longer than a plain one). */
  deadlineMs(): number;
  /** Rejects with a DiscoveryError (or any error) when the lookup fails; `signal` aborts it. */
  lookup(signal: AbortSignal): Promise<Answer>;
  /** Calls `changed` when the source may have changed (a file watch); returns the way to stop. */
  watch?(changed: () => void): () => void;
  /** Drops what the source keeps between lookups (a Consul index) after a failure. */
  reset?(): void;
}

/** A lookup that failed in a way worth saying plainly (HTTP 500, bad JSON, NXDOMAIN). */
export class DiscoveryError extends Error {}
