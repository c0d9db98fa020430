import { type Clock, monotonicClock } from '../clock.js';
import { type Connector, PLAIN } from '../upstream/connector.js';
import { converse } from './exchange.js';
import type { ProbeResult, ProbeTarget } from './probe-result.js';

export type { ProbeResult, ProbeTarget } from './probe-result.js';

/**
 * TCP probe: connect, then close. Healthy if the connect completes within
 * `timeoutMs`; `via` with TLS (health.tls), the handshake must complete and the
 * certificate verify too, as for a dial.
 */
export function tcpProbe(
  b: ProbeTarget,
  timeoutMs: number,
  clock: Clock = monotonicClock,
  via: Connector = PLAIN,
): Promise<ProbeResult> {
  // A conversation of no steps: connect (and handshake), then close with a FIN.
  return converse(b, [], timeoutMs, via.tls ? 'handshake done' : 'connected', clock, via);
}
