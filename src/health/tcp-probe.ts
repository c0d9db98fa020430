import { connect } from 'node:net';
import type { Backend } from '../backend/backend.js';

export interface ProbeResult {
  ok: boolean;
  /** "connected", "HTTP 503", "ECONNREFUSED", "timeout 2000ms"… */
  detail: string;
  latencyMs: number;
}

/** TCP probe: connect, then close. Healthy if the connect completes within `timeoutMs`. */
export function tcpProbe(b: Backend, timeoutMs: number): Promise<ProbeResult> {
  const start = performance.now();
  return new Promise((resolve) => {
    const sock = connect({ host: b.host, port: b.port });
    const timer = setTimeout(() => finish(false, `timeout ${timeoutMs}ms`), timeoutMs);
    function finish(ok: boolean, detail: string): void {
      clearTimeout(timer);
      sock.removeAllListeners('connect');
      sock.destroy();
      resolve({ ok, detail, latencyMs: performance.now() - start });
    }
    sock.on('error', (err: NodeJS.ErrnoException) => finish(false, err.code ?? err.message));
    sock.once('connect', () => finish(true, 'connected'));
  });
}
