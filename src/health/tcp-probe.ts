import { type Clock, monotonicClock } from '../clock.js';
import type { BackendTls } from '../proxy/tls/backend-tls.js';
import { converse } from './exchange.js';
import type { ProbeResult, ProbeTarget } from './probe-result.js';

export type { ProbeResult, ProbeTarget } from './probe-result.js';

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
