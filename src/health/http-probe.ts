import { request } from 'node:http';
import { type Clock, monotonicClock } from '../clock.js';
import type { ProbeResult, ProbeTarget } from './tcp-probe.js';

/**
 * HTTP probe: `GET path` on a fresh connection. Healthy on 2xx or 3xx within
 * `timeoutMs` (the whole exchange, headers and body). `address` is the Host
 * header: the backend's, even when the probe goes to another port.
 */
export function httpProbe(
  b: ProbeTarget & { readonly address: string },
  path: string,
  timeoutMs: number,
  clock: Clock = monotonicClock,
): Promise<ProbeResult> {
  const start = clock.now();
  return new Promise((resolve) => {
    let done = false;
    const req = request({
      host: b.host,
      port: b.port,
      path,
      method: 'GET',
      agent: false,
      headers: { host: b.address, 'user-agent': 'blitz-lb-health', connection: 'close' },
    });
    const timer = setTimeout(() => finish(false, `timeout ${timeoutMs}ms`), timeoutMs);
    function finish(ok: boolean, detail: string): void {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.destroy();
      resolve({ ok, detail, latencyMs: clock.now() - start });
    }
    req.on('error', (err: NodeJS.ErrnoException) => finish(false, err.code ?? err.message));
    req.on('response', (res) => {
      const code = res.statusCode ?? 0;
      res.on('error', () => {});
      res.resume();
      res.once('end', () => finish(code >= 200 && code < 400, `HTTP ${code}`));
    });
    req.end();
  });
}
