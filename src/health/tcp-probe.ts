import type { Backend } from '../backend/backend.js';
import { type Clock, monotonicClock } from '../clock.js';
import { connectTo } from '../proxy/connect.js';

export interface ProbeResult {
  ok: boolean;
  /** "connected", "HTTP 503", "ECONNREFUSED", "connect timeout 2000ms"… */
  detail: string;
  latencyMs: number;
}

/** TCP probe: connect, then close. Healthy if the connect completes within `timeoutMs`. */
export function tcpProbe(
  b: Backend,
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
