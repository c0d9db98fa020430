import { type Clock, monotonicClock } from '../clock.js';
import { connectTo } from '../proxy/connect.js';
import type { BackendTls } from '../proxy/tls/backend-tls.js';

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
  const start = clock.now();
  return new Promise((resolve) => {
    connectTo(
      b,
      timeoutMs,
      (cause, sock) => {
        sock.destroy();
        resolve({
          ok: cause === null,
          detail: cause ?? (tls ? 'handshake done' : 'connected'),
          latencyMs: clock.now() - start,
        });
      },
      tls,
    );
  });
}
