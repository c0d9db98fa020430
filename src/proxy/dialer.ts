import { connect, type Socket } from 'node:net';
import type { Backend } from '../backend/backend.js';
import type { BackendSet } from '../backend/backend-set.js';
import type { PickContext, Strategy } from '../balancer/strategy.js';
import type { ServiceConfig } from '../config/schema.js';
import type { LbError } from '../errors.js';
import { DialError, NoBackendError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { PooledSocket, WarmPool } from '../pool/warm-pool.js';

/**
 * What the dialer needs from whoever wants a backend socket: a client Session,
 * or an embedded `LoadBalancer.connect()` call.
 */
export interface DialTarget {
  readonly closed: boolean;
  readonly ctx: PickContext & { tried: Backend[] };
  readonly attempts: { backend: string; cause: string }[];
  reserved: Backend | null;
  pending: Socket | null;
  retryTimer: NodeJS.Timeout | null;
  noPool: boolean;
  attach(sock: Socket, target: Backend, pooled: PooledSocket | null): void;
  dialFailed(err: LbError): void;
}

/** What the dialer reads from its service; read on every dial, so a reload takes effect at once. */
export interface DialerDeps {
  readonly cfg: ServiceConfig;
  readonly set: BackendSet;
  readonly strategy: Strategy;
  readonly log: Logger;
  readonly pool: WarmPool;
  /** Plain counter, read at scrape time. */
  readonly counters: { retries: number };
  /** Every candidate is at its max_connections or max_rate: the session waits for a slot. */
  unavailable(s: DialTarget): void;
}

/** The error text of a failed connect, short enough for a log line: "ECONNREFUSED", "connect timeout 2000ms". */
export function dialCause(err: Error | undefined, timeoutMs: number): string {
  if (!err) return `connect timeout ${timeoutMs}ms`;
  return (err as NodeJS.ErrnoException).code ?? err.message;
}

/**
 * Gets a session its backend socket: picks a backend, connects with a
 * deadline, and on failure retries on a backend not yet tried, backing off
 * retry_delay, 2x, 4x... Retries happen only here, before any client byte was
 * written to a backend (house rule 8).
 */
export class Dialer {
  constructor(private readonly deps: DialerDeps) {}

  dial(s: DialTarget): void {
    if (s.closed) return;
    const now = performance.now();
    s.ctx.now = now;
    const b = this.deps.strategy.pick(s.ctx);
    if (!b) {
      if (this.deps.set.candidates.length > 0) this.deps.unavailable(s);
      else s.dialFailed(new NoBackendError(this.deps.cfg.name));
      return;
    }
    this.deps.set.reserve(b, now);
    s.reserved = b;
    s.ctx.tried.push(b);
    if (b.halfOpen) this.deps.set.beginTrial(b);
    const pooled = s.noPool ? null : this.deps.pool.take(b);
    if (pooled) {
      // Our listeners go on before the pool's come off: the socket is never without an 'error' listener.
      s.attach(pooled.socket, b, pooled);
      this.deps.pool.release(pooled);
      return;
    }
    this.connect(s, b);
  }

  /** A pooled socket failed untouched after checkout: dial again, fresh; counts as a retry. */
  redial(s: DialTarget): void {
    this.deps.counters.retries++;
    this.dial(s);
  }

  private connect(s: DialTarget, b: Backend): void {
    const timeoutMs = this.deps.cfg.connectTimeoutMs;
    const sock = connect({
      host: b.host,
      port: b.port,
      allowHalfOpen: true,
      noDelay: true,
      timeout: timeoutMs,
    });
    s.pending = sock;
    const onFail = (err?: Error): void => {
      sock.removeListener('connect', onConnect);
      sock.removeListener('timeout', onTimeout);
      sock.destroy();
      if (s.pending === sock) s.pending = null;
      this.failed(s, b, dialCause(err, timeoutMs));
    };
    const onTimeout = (): void => onFail();
    const onConnect = (): void => {
      sock.removeListener('error', onFail);
      sock.removeListener('timeout', onTimeout);
      s.pending = null;
      if (s.closed) {
        sock.destroy();
        return;
      }
      this.deps.set.reportDialSuccess(b);
      s.attach(sock, b, null);
    };
    sock.on('error', onFail);
    sock.once('timeout', onTimeout);
    sock.once('connect', onConnect);
  }

  /** Records the failure, then retries with backoff or gives up. */
  private failed(s: DialTarget, b: Backend, cause: string): void {
    if (s.reserved === b) {
      this.deps.set.release(b);
      s.reserved = null;
    }
    this.deps.set.recordDialFailure(b, cause);
    s.attempts.push({ backend: b.address, cause });
    if (s.closed) return;
    const { maxRetries, retryDelayMs, name } = this.deps.cfg;
    const failures = s.attempts.length;
    if (failures > maxRetries) {
      s.dialFailed(new DialError(name, s.attempts));
      return;
    }
    const delay = retryDelayMs * 2 ** (failures - 1);
    this.deps.log.debug({ backend: b.address, cause, retryInMs: delay }, 'dial failed; retrying');
    s.retryTimer = setTimeout(() => {
      s.retryTimer = null;
      this.deps.counters.retries++;
      this.dial(s);
    }, delay);
  }
}
