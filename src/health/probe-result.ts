import type { ProbeCause } from '../backend/causes.js';
import type { ConnectTarget } from '../upstream/connect.js';

/** What one probe found. A leaf, so every probe kind and the checker share it without a cycle. */
export interface ProbeResult {
  ok: boolean;
  /** "connected", "HTTP 503", "ECONNREFUSED", "connect timeout 2000ms", "tls: certificate has expired"… */
  detail: string;
  latencyMs: number;
  /** A failure's class, given where it happened (see backend/causes.ts); absent when ok. */
  cause?: ProbeCause;
}

/** Where a probe goes: the backend, or the health table's `address` / `port` in its place (a connect target). */
export type ProbeTarget = ConnectTarget;
