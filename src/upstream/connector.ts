import type { Socket } from 'node:net';
import type { BackendTlsConfig } from '../config/backend-tls.js';
import { BackendTls } from './backend-tls.js';
import { type ConnectDone, type ConnectTarget, connectTo } from './connect.js';

/**
 * How one service opens connections to its backends, built once from its
 * `connect_timeout` and `backend_tls` and handed to everyone who connects:
 * the Dialer, the warm pool, the health and agent checks and the HTTP client.
 * They read it from the service at each use, so a reload that changes either
 * key swaps this one object (see service/reload-steps.ts).
 */
export class Connector {
  /** The same connector without TLS (a check with health.tls off, the agent). */
  readonly plain: Connector;

  constructor(
    /** connect_timeout: the deadline of a dial, a refill, an HTTP client's connect. */
    readonly timeoutMs: number,
    /** backend_tls (null: plain TCP); its session-ticket cache lives as long as this connector. */
    readonly tls: BackendTls | null,
  ) {
    this.plain = tls === null ? this : new Connector(timeoutMs, null);
  }

  /** A service's connector; `tls` reuses a BackendTls already made for the same backend_tls (its tickets kept). */
  static of(timeoutMs: number, cfg: BackendTlsConfig | null, tls: BackendTls | null): Connector {
    return new Connector(timeoutMs, cfg === null ? null : (tls ?? new BackendTls(cfg)));
  }

  /**
   * A dial (or a refill, or the HTTP client's connect) to a backend, within
   * connect_timeout; with backend_tls, done at 'secureConnect'. `servername`:
   * this dial's own TLS server name (SNI passed on); `alpn`: the protocols
   * offered (the HTTP client offers h2 where none are configured).
   */
  connect(
    target: ConnectTarget,
    done: ConnectDone,
    servername: string | null = null,
    alpn: readonly string[] | undefined = this.tls?.alpn,
  ): Socket {
    return connectTo(target, this.timeoutMs, done, this.tls, servername, alpn);
  }

  /** A check's connection (a probe, the agent): its own deadline, TLS as this connector has it. */
  check(target: ConnectTarget, timeoutMs: number, done: ConnectDone): Socket {
    return connectTo(target, timeoutMs, done, this.tls);
  }
}

/** No backend_tls and no connect_timeout of a service: for checks run outside one (tests, tools). */
export const PLAIN = new Connector(0, null);

/** Whoever holds the service's current connector (its core): read at each use. */
export interface Upstream {
  readonly connector: Connector;
}
