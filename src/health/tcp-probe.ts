import { type Clock, monotonicClock } from '../clock.js';
import type { BackendTls } from '../proxy/tls/backend-tls.js';
import { converse } from './exchange.js';

export interface ProbeResult {
  ok: boolean;
  /** "connected", "HTTP 503", "ECONNREFUSED", "connect timeout 2000ms", "tls: certificate has expired"… */
  detail: string;
  latencyMs: number;
}

/** Where a probe goes: the backend, or the health table's `address` / `port` in its place. */
export interface ProbeTarget {
  readonly host: string;
  readonly port: number;
}

/**
 * TCP probe: connect, then close. Healthy if the connect completes within
 * `timeoutMs`; with `tls` (health.tls), the handshake must complete and the
 * certificate verify too, as for a dial.
 */
export function tcpProbe(
  b: ProbeTarget,
  timeoutMs: number,
  clock: Clock = monotonicClock,
  tls: BackendTls | null = null,
): Promise<ProbeResult> {
  // A conversation of no steps: connect (and handshake), then close with a FIN.
  return converse(b, [], timeoutMs, tls ? 'handshake done' : 'connected', clock, tls);
}
