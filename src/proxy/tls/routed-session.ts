import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { SourcePass } from '../admission.js';
import type { ProxyAddresses } from '../proxy-protocol.js';
import { Session, type SessionHost } from '../session.js';

/** What the front learnt about a client before its session: who it is, the name it asked for, the route it took. */
export interface Routed {
  /** From its PROXY header, when the listener accepts them. */
  readonly proxied: ProxyAddresses | null;
  /** The SNI name of its hello (null: none sent, or the hello was not read). */
  readonly serverName: string | null;
  /** The ALPN protocols its hello offered (null: none, or the hello was not read). */
  readonly alpn: readonly string[] | null;
  /** The sni pattern that took it (the route, a bounded metrics label); null when nothing was matched. */
  readonly route: string | null;
  /**
   * Its pass through allow/deny and the per-source limits of its service,
   * when they were judged before its hello (a listen address of one service,
   * or a terminating service's handshake); null: its service judges it at hand-over.
   */
  readonly pass: SourcePass | null;
}

/**
 * A client of a terminating service while its handshake runs: judged before
 * the handshake (a source over its limit costs no ECDHE), and the raw socket
 * is kept so shutdown can end it.
 */
export interface Handshaking extends Routed {
  readonly raw: Socket;
  readonly pass: SourcePass;
}

/** The SNI name of a terminated client's handshake, as the hello parser gives it (lower case, no trailing dot). */
function sentName(sock: TLSSocket): string | null {
  const n = sock.servername;
  return typeof n === 'string' && n !== '' ? n.toLowerCase().replace(/\.$/, '') : null;
}

/**
 * A session that came through a front (proxy/tls/front.ts): its PROXY header
 * and hello were read before it existed, and its client may be a TLS socket.
 * A subclass, so sessions of services that do neither carry nothing more.
 */
export class RoutedSession extends Session {
  readonly serverName: string | null;
  /** Offered in its hello, else what its terminated handshake agreed on (routes match it). */
  readonly alpn: readonly string[] | null;
  /** The client leg is a TLS socket this balancer terminates. */
  readonly terminated: boolean;
  /** Judged before its session (see Routed.pass); null: admission judges it as any session. */
  readonly pass: SourcePass | null;

  constructor(host: SessionHost, client: Socket, r: Routed, terminated: boolean) {
    super(host, client);
    // A terminated client's name comes from its handshake when the front did not read the
    // hello (one terminating service on its address): the access log carries what it sent.
    this.serverName = r.serverName ?? (terminated ? sentName(client as TLSSocket) : null);
    this.terminated = terminated;
    const agreed = terminated ? (client as TLSSocket).alpnProtocol : false;
    this.alpn = r.alpn ?? (typeof agreed === 'string' ? [agreed] : null);
    this.pass = r.pass;
    if (r.proxied) this.proxiedBy(r.proxied);
    else if (r.pass) this.captureClientIp(r.pass.ip);
  }
}
