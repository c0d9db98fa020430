import type { Socket } from 'node:net';
import { clientKey } from './ip-text.js';
import type { ProxyAddresses } from './proxy-protocol.js';
import type { SourceLimiter } from './source-limits.js';

/**
 * Who a session's client is (Session extends it): its socket, its number in
 * its service, its address (captured once), what its PROXY header said, and
 * the per-source limiter it counts in.
 */
export class SessionClient {
  /** Its number in its service, for the admin API's session list (given by OpenSessions). */
  id = 0;
  readonly client: Socket;
  /** The local port the client connected to (routes by port read it; a socket read, so on demand). */
  get localPort(): number {
    return this.client.localPort ?? 0;
  }
  /**
   * The client's address, as a key (see clientKey): the socket's, or the one
   * its PROXY header gave. Read on demand (ip-hash, per-source limits,
   * allow/deny, logs): the socket's costs a getpeername() syscall, which a
   * session that needs none of these never makes.
   */
  get clientIp(): string {
    return this.ip ?? this.captureClientIp();
  }

  /**
   * Fixes the client's address now (once): `known` when it was read already
   * (a front judged it), else the socket's peer, read while the socket still
   * has one (after the close it reads as none, and the access log or a
   * per-source release would miss it).
   */
  captureClientIp(known?: string): string {
    if (known !== undefined) this.ip = known;
    else this.ip ??= clientKey(this.client.remoteAddress ?? '');
    return this.ip;
  }
  /** The client's addresses from its PROXY header, when the service accepts them. */
  proxied: ProxyAddresses | null = null;
  /** The per-source limiter this session counts in, released when it ends; null when no limit applies. */
  sourceLimiter: SourceLimiter | null = null;
  private ip: string | null = null;

  constructor(client: Socket) {
    this.client = client;
  }

  /** The client's addresses, as its PROXY header gave them. */
  protected proxiedBy(addresses: ProxyAddresses): void {
    this.proxied = addresses;
    this.ip = clientKey(addresses.srcAddr);
  }
}
