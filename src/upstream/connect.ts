import { connect, type Socket } from 'node:net';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import { type ConnectFailure, errnoKind } from '../backend/causes.js';
import { noop } from '../noop.js';
import { tlsCause } from '../proxy/tls/tls-cause.js';
import type { BackendTls } from './backend-tls.js';

/** Where to connect: a backend, or anything else with a host and a port. */
export interface ConnectTarget {
  readonly host: string;
  readonly port: number;
}

/**
 * Told once: `failure` is null and the socket is connected (its 'error'
 * listener is gone, so the callee must add its own before returning), or
 * `failure` says why the connect failed and the socket is already destroyed.
 */
export type ConnectDone = (failure: ConnectFailure | null, sock: Socket) => void;

/** A failed TCP connect, its detail short enough for a log line: "ECONNREFUSED", "connect timeout 2000ms". */
function tcpFailure(err: Error | undefined, timeoutMs: number): ConnectFailure {
  if (!err) return { kind: 'timeout', detail: `connect timeout ${timeoutMs}ms` };
  const code = (err as NodeJS.ErrnoException).code;
  return code === undefined
    ? { kind: 'other', detail: err.message }
    : { kind: errnoKind(code), detail: code };
}

/** A TLS connect that failed after the TCP connect: a handshake or certificate failure, or a socket error mid-handshake. */
function tlsFailure(err: Error | undefined, timeoutMs: number): ConnectFailure {
  if (!err) return { kind: 'timeout', detail: `tls handshake timeout ${timeoutMs}ms` };
  const detail = tlsCause(err);
  // tlsCause keeps a socket error's errno code as it is; everything else it names is TLS's.
  return detail === (err as NodeJS.ErrnoException).code
    ? { kind: errnoKind(detail), detail }
    : { kind: 'tls', detail };
}

/**
 * The one way the balancer opens a connection to a backend, for the dialer,
 * the warm pool's refill and the TCP probe: a deadline on the connect, no
 * Nagle delay, half-close allowed, and one error text. Returns the socket at
 * once, so a caller whose client left can destroy it mid-connect (its `done`
 * is then never called). With `tls` (the service's backend_tls), see
 * connectTls; `servername` overrides its server name for this one dial, and
 * `alpn` the protocols offered (the HTTP client offers h2 where none are configured).
 */
export function connectTo(
  target: ConnectTarget,
  timeoutMs: number,
  done: ConnectDone,
  tls: BackendTls | null = null,
  servername: string | null = null,
  alpn: readonly string[] | undefined = tls?.alpn,
): Socket {
  if (tls !== null) return connectTls(target, timeoutMs, done, tls, servername, alpn);
  const sock = connect({
    host: target.host,
    port: target.port,
    allowHalfOpen: true,
    noDelay: true,
  });
  // A timer of our own, not the socket's `timeout` option: socket.setTimeout(0)
  // leaves its cleared Timeout and a bound callback on the socket for its whole
  // life (0.2 KiB of every session's heap, by a heap snapshot diff).
  const onFail = (err?: Error): void => {
    clearTimeout(timer);
    sock.removeListener('connect', onConnect);
    // A socket being destroyed must never throw an unhandled 'error'.
    sock.on('error', noop);
    sock.destroy();
    done(tcpFailure(err, timeoutMs), sock);
  };
  const onTimeout = (): void => {
    // Destroyed by its caller mid-connect (its client left): `done` is not told.
    if (!sock.destroyed) onFail();
  };
  const onConnect = (): void => {
    clearTimeout(timer);
    sock.removeListener('error', onFail);
    done(null, sock);
  };
  const timer = setTimeout(onTimeout, timeoutMs);
  timer.unref();
  sock.once('error', onFail);
  sock.once('connect', onConnect);
  return sock;
}

/**
 * A TLS connection, told `done` only once the handshake completed and the
 * certificate verified ('secureConnect'): a caller never holds a socket it
 * could write plaintext-bound bytes to early. The deadline covers the TCP
 * connect and the handshake. A handshake or certificate failure is a failed
 * connect with a "tls: …" cause. Session tickets the backend sends are kept
 * per backend, so the next connect to it resumes.
 */
function connectTls(
  target: ConnectTarget,
  timeoutMs: number,
  done: ConnectDone,
  tls: BackendTls,
  override: string | null,
  alpn: readonly string[] | undefined,
): Socket {
  const name = tls.servername(target.host, override);
  // allowHalfOpen is passed on to the socket by tls.connect, though its type leaves it out.
  const opts: ConnectionOptions & { allowHalfOpen: boolean } = {
    host: target.host,
    port: target.port,
    allowHalfOpen: true,
    secureContext: tls.context,
    servername: name,
    rejectUnauthorized: tls.verify,
    ALPNProtocols: alpn as string[] | undefined,
    session: tls.session(target, name),
  };
  const sock = tlsConnect(opts);
  sock.setNoDelay(true);
  sock.setTimeout(timeoutMs);
  let tcpUp = false;
  const onFail = (err?: Error): void => {
    sock.removeListener('connect', onTcp);
    sock.removeListener('secureConnect', onSecure);
    sock.removeListener('timeout', onTimeout);
    sock.removeListener('session', onSession);
    sock.on('error', noop);
    sock.destroy();
    // A resumed session that failed must not be offered again.
    tls.forget(target, name);
    done(tcpUp ? tlsFailure(err, timeoutMs) : tcpFailure(err, timeoutMs), sock);
  };
  const onTcp = (): void => {
    tcpUp = true;
  };
  const onTimeout = (): void => onFail();
  const onSession = (session: Buffer): void => tls.remember(target, name, session);
  const onSecure = (): void => {
    sock.removeListener('error', onFail);
    sock.removeListener('timeout', onTimeout);
    sock.removeListener('connect', onTcp);
    sock.setTimeout(0);
    done(null, sock);
  };
  sock.once('error', onFail);
  sock.once('timeout', onTimeout);
  sock.once('connect', onTcp);
  sock.once('secureConnect', onSecure);
  // Stays on: TLS 1.3 tickets arrive after the handshake, while the socket idles in the pool or carries a session.
  sock.on('session', onSession);
  return sock;
}
