import { type ClientRequest, request } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import type { SecureContext } from 'node:tls';
import { type ProbeCause, probeCauseOfError } from '../backend/causes.js';
import { type Clock, monotonicClock } from '../clock.js';
import { tlsCause } from '../proxy/tls/tls-cause.js';
import { type Connector, PLAIN } from '../upstream/connector.js';
import type { ProbeResult, ProbeTarget } from './probe-result.js';

/**
 * HTTP probe: `GET path` on a fresh connection. Healthy on 2xx or 3xx within
 * `timeoutMs` (the whole exchange, headers and body). `address` is the Host
 * header: the backend's, even when the probe goes to another port. With TLS in `via`
 * (the service's backend_tls), HTTPS: verified and named as a dial would be.
 */
export function httpProbe(
  b: ProbeTarget & { readonly address: string },
  path: string,
  timeoutMs: number,
  clock: Clock = monotonicClock,
  via: Connector = PLAIN,
): Promise<ProbeResult> {
  const tls = via.tls;
  const start = clock.now();
  return new Promise((resolve) => {
    let done = false;
    const opts = {
      host: b.host,
      port: b.port,
      path,
      method: 'GET',
      agent: false as const,
      headers: { host: b.address, 'user-agent': 'blitz-lb-health', connection: 'close' },
    };
    let req: ClientRequest;
    if (tls) {
      // secureContext is passed on to tls.connect, though https's type leaves it out.
      const secure: RequestOptions & { secureContext: SecureContext } = {
        ...opts,
        secureContext: tls.context,
        // '' and not undefined: https would otherwise take the name from the Host header.
        servername: tls.servername(b.host, null) ?? '',
        rejectUnauthorized: tls.verify,
      };
      req = httpsRequest(secure);
    } else req = request(opts);
    const timer = setTimeout(() => finish(false, `timeout ${timeoutMs}ms`, 'timeout'), timeoutMs);
    function finish(ok: boolean, detail: string, cause: ProbeCause = 'bad-reply'): void {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.destroy();
      const latencyMs = clock.now() - start;
      resolve(ok ? { ok, detail, latencyMs } : { ok, detail, latencyMs, cause });
    }
    req.on('error', (err: NodeJS.ErrnoException) => {
      const detail = tls && err.code ? tlsCause(err) : (err.code ?? err.message);
      // tlsCause keeps a socket error's errno code as it is; everything else it names is TLS's.
      const cause =
        err.code === undefined
          ? 'bad-reply'
          : detail === err.code
            ? probeCauseOfError(err.code)
            : 'tls';
      finish(false, detail, cause);
    });
    req.on('response', (res) => {
      const code = res.statusCode ?? 0;
      res.on('error', () => {});
      res.resume();
      res.once('end', () => finish(code >= 200 && code < 400, `HTTP ${code}`));
      // Cut mid-body: no 'end' comes; a failed check now, not at the deadline.
      res.once('close', () => finish(false, `HTTP ${code}, reply cut before its end`));
    });
    req.end();
  });
}
