import { connect, type Socket } from 'node:net';
import { noop } from '../noop.js';

/** Where to connect: a backend, or anything else with a host and a port. */
export interface ConnectTarget {
  readonly host: string;
  readonly port: number;
}

/**
 * Told once: `cause` is null and the socket is connected (its 'error'
 * listener is gone, so the callee must add its own before returning), or
 * `cause` says why the connect failed and the socket is already destroyed.
 */
export type ConnectDone = (cause: string | null, sock: Socket) => void;

/** The error text of a failed connect, short enough for a log line: "ECONNREFUSED", "connect timeout 2000ms". */
export function dialCause(err: Error | undefined, timeoutMs: number): string {
  if (!err) return `connect timeout ${timeoutMs}ms`;
  return (err as NodeJS.ErrnoException).code ?? err.message;
}

/**
 * The one way the balancer opens a TCP connection to a backend, for the
 * dialer, the warm pool's refill and the TCP probe: a deadline on the
 * connect, no Nagle delay, half-close allowed, and one error text. Returns the
 * socket at once, so a caller whose client left can destroy it mid-connect
 * (its `done` is then never called).
 */
export function connectTo(target: ConnectTarget, timeoutMs: number, done: ConnectDone): Socket {
  const sock = connect({
    host: target.host,
    port: target.port,
    allowHalfOpen: true,
    noDelay: true,
    timeout: timeoutMs,
  });
  const onFail = (err?: Error): void => {
    sock.removeListener('connect', onConnect);
    sock.removeListener('timeout', onTimeout);
    // A socket being destroyed must never throw an unhandled 'error'.
    sock.on('error', noop);
    sock.destroy();
    done(dialCause(err, timeoutMs), sock);
  };
  const onTimeout = (): void => onFail();
  const onConnect = (): void => {
    sock.removeListener('error', onFail);
    sock.removeListener('timeout', onTimeout);
    sock.setTimeout(0);
    done(null, sock);
  };
  sock.once('error', onFail);
  sock.once('timeout', onTimeout);
  sock.once('connect', onConnect);
  return sock;
}
