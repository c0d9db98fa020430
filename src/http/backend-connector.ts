import type { Socket } from 'node:net';
import type { buildConnector } from 'undici';
import type { Backend } from '../backend/backend.js';
import { DialError } from '../errors.js';
import { noop } from '../noop.js';
import type { HttpHost } from './host.js';

/** Offered over backend_tls when it names no protocols: h2 where the backend has it, else HTTP/1.1. */
const HTTP_ALPN: readonly string[] = Object.freeze(['h2', 'http/1.1']);

/**
 * undici's `connect` for one backend's pool: a warm socket from the
 * service's pool when it has one (plain TCP, or backend_tls with `alpn`
 * set), else the balancer's own connect (its
 * connect_timeout, backend_tls, session resumption). The outcome is a
 * passive health signal, as a session's dial is; the balancer's own resource
 * errors (EMFILE…) are never counted against the backend. A failure is a
 * DialError (LB_ERR_DIAL): nothing was sent, so the request may go elsewhere.
 */
export function backendConnector(host: HttpHost, b: Backend): buildConnector.connector {
  return (_opts, cb) => {
    const connector = host.connector;
    const tls = connector.tls;
    // A warm TLS socket was handshaken offering only the configured ALPN: with none configured it
    // could not be HTTP/2, and an h2-only backend would refuse it, so those dial fresh.
    const pooled = tls && !tls.alpn ? null : host.pool.take(b);
    if (pooled) {
      const sock = pooled.socket;
      sock.on('error', noop);
      host.pool.detach(pooled);
      // An HTTP backend says nothing first: bytes here would be read as the answer to the request.
      if (pooled.early.length === 0) {
        cb(null, sock);
        return;
      }
      sock.destroy();
    }
    const startedAt = host.clock.now();
    connector.connect(
      b,
      (failure, sock: Socket) => {
        if (failure !== null) {
          if (host.localErrors.claim(failure, 'dial', b.address)) host.backends.abandonTrial(b);
          else host.backends.recordDialFailure(b, failure);
          cb(new DialError(host.cfg.name, [{ backend: b.address, cause: failure.detail }]), null);
          return;
        }
        // With passive_http_5xx the answer is the verdict: a backend that accepts and answers 500
        // on every fresh connection must not have its failure streak cleared by each connect.
        if (!host.cfg.passiveHttp5xx) host.backends.reportDialSuccess(b);
        if (host.strategy.observe !== undefined) {
          const now = host.clock.now();
          host.strategy.observe(b, now - startedAt, now);
        }
        // undici adds its own listeners once the connect settles; until then nothing may throw.
        sock.on('error', noop);
        cb(null, sock);
      },
      null,
      tls ? (tls.alpn ?? HTTP_ALPN) : undefined,
    );
  };
}
