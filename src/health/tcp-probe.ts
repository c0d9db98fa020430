import { type Clock, monotonicClock } from '../clock.js';
import { connectTo } from '../proxy/connect.js';

export interface ProbeResult {
  ok: boolean;
  /** "connected", "HTTP 503", "ECONNREFUSED", "connect timeout 2000ms"… */
  detail: string;
  latencyMs: number;
}

/** Where a probe goes: the backend, or the health table's `address` / `port` in its place. */
export interface ProbeTarget {
  readonly host: string;
  readonly port: number;
}

/** TCP probe: connect, then close. Healthy if the connect completes within `timeoutMs`. */
export function tcpProbe(
  b: ProbeTarget,
  timeoutMs: number,
  clock: Clock = monotonicClock,
): Promise<ProbeResult> {
  const start = clock.now();
  return new Promise((resolve) => {
    connectTo(b, timeoutMs, (cause, sock) => {
      sock.destroy();
      resolve({ ok: cause === null, detail: cause ?? 'connected', latencyMs: clock.now() - start });
    });
  });
}
