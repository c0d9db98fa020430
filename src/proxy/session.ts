import type { Socket } from 'node:net';
import type { Backend } from '../backend/backend.js';
import type { BackendSet } from '../backend/backend-set.js';
import type { SlotLease } from '../backend/lease.js';
import type { Clock } from '../clock.js';
import type { LbError } from '../errors.js';
import { noop } from '../noop.js';
import type { PooledSocket } from '../pool/warm-pool.js';
import type { Shaper } from './bandwidth.js';
import type { DialAttempt, DialRequester } from './dial-attempt.js';
import { readProxyHeader } from './header-reader.js';
import { clientKey } from './ip-text.js';
import { addressesOf, encodeV1, encodeV2, type ProxyAddresses } from './proxy-protocol.js';
import { watchQueued } from './queue-watch.js';
import type { SessionConfig, TerminationCause } from './session-host.js';
import {
  abort,
  backendClose,
  backendData,
  backendDrain,
  backendEnd,
  backendError,
  clientClose,
  clientData,
  clientDrain,
  clientEnd,
  clientError,
  passFin,
  tag,
} from './session-listeners.js';
import { backendDataShaped, clientDataShaped } from './shaped-listeners.js';
import { closesPlainly, quietFrom, type SideDeadlines, timedOut } from './side-timeouts.js';
import type { SourceLimiter } from './source-limits.js';

export type { SessionConfig, TerminationCause } from './session-host.js';

/** What a session reaches of its service (proxy/sessions.ts's OpenSessions). */
export interface SessionHost {
  readonly backends: BackendSet;
  readonly clock: Clock;
  /** Read at each use, so a reload applies to sessions that start after it. */
  readonly cfg: SessionConfig;
  /** The client is who it says it is (PROXY header read if required): apply source limits, then dial. */
  admit(s: Session): void;
  /** A PROXY header was missing, malformed or late. */
  proxyHeaderFailed(s: Session, reason: string): void;
  /** The backend leg is ready (s.poolHit says whether it came warm from the pool). */
  sessionReady(s: Session): void;
  /** Called once, when both legs are closed. */
  sessionEnded(s: Session): void;
  /** The dial ended without a backend; the session closes. */
  dialFailed(s: Session, err: LbError): void;
  /** The session's own code threw (a bug, or input nothing foresaw): it was closed. */
  sessionFailed(s: Session, err: unknown): void;
}

/**
 * One client <-> backend pair. The client is accepted paused and is not read
 * until its backend socket is connected, so nothing needs buffering during the
 * dial. Once attached, bytes flow both ways with backpressure; a FIN on one
 * side becomes a FIN on the other (half-close carried, allowHalfOpen), a reset
 * on one side becomes a reset on the other, and an idle deadline ends both.
 */
export class Session implements DialRequester {
  /** Its number in its service, for the admin API's session list (given by OpenSessions). */
  id = 0;
  readonly client: Socket;
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
  backend: Socket | null = null;
  target: Backend | null = null;
  /** The target's slot, held from the hand-over until the session ends (or a fresh redial). */
  private lease: SlotLease | null = null;
  /** The dial for this session, once admitted: cancelled if the client leaves first, kept for the access log. */
  attempt: DialAttempt | null = null;
  /** Clock ms at accept and when the backend leg was ready. */
  readonly acceptedAt: number;
  readyAt = 0;
  cause: TerminationCause | null = null;
  /** The backend leg came from the warm pool. */
  poolHit = false;
  /** The client's addresses from its PROXY header, when the service accepts them. */
  proxied: ProxyAddresses | null = null;
  /** The per-source limiter this session counts in, released when it ends; null when no limit applies. */
  sourceLimiter: SourceLimiter | null = null;
  // Per side: a chunk crossed since the idle sweep last looked (set by the data listeners),
  // since when the sweep has seen none, and who has spoken (see side-timeouts.ts).
  clientBusy = false;
  backendBusy = false;
  clientQuietSince = 0;
  backendQuietSince = 0;
  spoke = 0;
  /** Its bandwidth limits, given by the host at sessionReady; null (the common case) when none apply. */
  shaper: Shaper | null = null;

  private ip: string | null = null;
  private headerBytes = 0;
  private lifeTimer: NodeJS.Timeout | null = null;
  private headerCleanup: (() => void) | null = null;
  private stopWatching: (() => void) | null = null;

  /** What the client sent while it waited in the queue (read to see it leave), for the backend. */
  private held: Buffer[] | null = null;
  private clientClosed = false;
  private backendClosed = false;
  private ended = false;
  private clientWired = false;

  constructor(
    private readonly host: SessionHost,
    client: Socket,
  ) {
    this.client = client;
    this.acceptedAt = host.clock.now();
    tag(client, this);
    client.on('error', clientError);
    client.on('close', clientClose);
  }

  start(): void {
    try {
      if (this.host.cfg.acceptProxy) this.readProxyHeader();
      else this.host.admit(this);
    } catch (err) {
      this.crashed(err);
    }
  }

  /** A client whose PROXY header (if any) was read before this session existed (see proxy/tls/front.ts). */
  startRead(): void {
    try {
      this.host.admit(this);
    } catch (err) {
      this.crashed(err);
    }
  }

  /** The client's addresses, as its PROXY header gave them. */
  protected proxiedBy(addresses: ProxyAddresses): void {
    this.proxied = addresses;
    this.ip = clientKey(addresses.srcAddr);
  }

  /**
   * Nothing a peer sends may end the process: an exception in this session's
   * own code closes this session (a reset both ways) and is logged.
   */
  private crashed(err: unknown): void {
    this.cause ??= 'error';
    this.host.sessionFailed(this, err);
    abort(this.client);
    if (this.backend) abort(this.backend);
  }

  /** The PROXY header first; the client is admitted once it says who the client is. */
  private readProxyHeader(): void {
    this.headerCleanup = readProxyHeader(this.client, (failure, addresses) => {
      this.headerCleanup = null;
      if (failure !== null) {
        this.host.proxyHeaderFailed(this, failure);
        this.refuse('refused-proxy');
        return;
      }
      if (addresses) this.proxiedBy(addresses);
      try {
        this.host.admit(this);
      } catch (err) {
        this.crashed(err);
      }
    });
  }

  /**
   * The dialer has a connected backend socket for us: splice. A pooled socket
   * brings the bytes its backend sent while it waited; they reach the client
   * first, in order.
   */
  dialed(a: DialAttempt, sock: Socket, lease: SlotLease, pooled: PooledSocket | null): void {
    this.attempt = a;
    if (this.client.destroyed) {
      // Gone between its last event and this hand-over: the slot goes back, the socket too.
      sock.on('error', noop);
      sock.destroy();
      lease.end();
      return;
    }
    this.backend = sock;
    try {
      this.attach(sock, lease, pooled);
    } catch (err) {
      // Whatever step threw: never without an 'error' listener, and its close must end the session.
      if (sock.listenerCount('error') === 0) sock.on('error', noop);
      if (!sock.listeners('close').includes(backendClose)) {
        tag(sock, this);
        sock.on('close', backendClose);
      }
      this.crashed(err);
    }
  }

  private attach(sock: Socket, lease: SlotLease, pooled: PooledSocket | null): void {
    const target = lease.backend;
    this.lease = lease;
    this.stopWatching?.();
    this.target = target;
    this.poolHit = pooled !== null;
    this.readyAt = this.host.clock.now();
    this.host.backends.sessionOpened(target);
    tag(sock, this);
    sock.on('error', backendError);
    sock.on('close', backendClose);
    sock.on('end', backendEnd);
    sock.on('drain', backendDrain);
    quietFrom(this, this.readyAt);
    if (!this.clientWired) {
      this.clientWired = true;
      this.client.on('end', clientEnd);
      this.client.on('drain', clientDrain);
    }
    if (this.host.cfg.sendProxy) {
      // Written at hand-over, not at connect, so a warm socket never carries another client's header.
      const a =
        this.proxied ??
        addressesOf(
          this.client.remoteAddress,
          this.client.remotePort,
          this.client.localAddress,
          this.client.localPort,
        );
      const header = this.host.cfg.sendProxy === 'v2' ? encodeV2(a) : encodeV1(a);
      this.headerBytes = header.length;
      sock.write(header);
    }
    if (this.lifeTimer === null && this.host.cfg.maxLifetimeMs > 0) {
      const left = Math.max(0, this.host.cfg.maxLifetimeMs - (this.readyAt - this.acceptedAt));
      this.lifeTimer = setTimeout(() => this.onLifetime(), left);
    }
    if (this.held) {
      // What the client sent while it waited goes first (once: a redial has sent it already).
      for (const chunk of this.held) sock.write(chunk);
      this.held = [];
    }
    if (pooled) for (const chunk of pooled.early) this.client.write(chunk);
    this.host.sessionReady(this);
    // Our own data handlers rather than pipe(): one shared listener per direction, no per-chunk
    // closures, and FINs carried by onClientEnd/onBackendEnd, so a warm socket that dies
    // untouched can be swapped out before its FIN reaches the client.
    sock.on('data', this.shaper === null ? backendData : backendDataShaped);
    this.client.on('data', this.shaper === null ? clientData : clientDataShaped);
    // Explicit: after a pooled socket's swap the client was paused, and 'data' alone does not resume.
    this.client.resume();
    if (this.client.readableEnded) sock.end();
  }

  /** Queued: watch the client, so one that leaves frees its place at once (see watchQueued). */
  waiting(): void {
    if (this.stopWatching || this.clientClosed || this.client.readableEnded) return;
    this.held ??= [];
    const stop = watchQueued(this.client, this.held, () => this.refuse('client-closed'));
    this.stopWatching = () => {
      stop();
      this.stopWatching = null;
    };
  }

  /** Turned away before any backend: `cause` says why (limits, PROXY header). */
  refuse(cause: TerminationCause): void {
    if (this.clientClosed) return;
    this.cause = cause;
    // Now, not at 'close' a tick later: the queue must not dial for a client already gone.
    this.attempt?.cancel();
    this.client.destroy();
  }

  dialFailed(a: DialAttempt, err: LbError): void {
    this.attempt = a;
    if (this.clientClosed) return;
    this.cause =
      err.code === 'LB_ERR_NO_BACKEND'
        ? 'refused-no-backend'
        : err.code === 'LB_ERR_LIMIT'
          ? 'refused-limit'
          : 'connect-failed';
    this.host.dialFailed(this, err);
    this.client.destroy();
  }

  /**
   * Ends the session now. A cut made on purpose (shutdown, an operator's
   * disable, max_lifetime, one side's timeout) resets both legs, so an
   * unframed protocol never takes a truncated reply for a complete one; an
   * idle or tunnel timeout, with nothing in flight, closes them plainly.
   */
  destroy(cause: TerminationCause): void {
    this.cause ??= cause;
    this.attempt?.cancel();
    if (closesPlainly(cause)) {
      this.client.destroy();
      this.backend?.destroy();
      return;
    }
    abort(this.client);
    if (this.backend) abort(this.backend);
  }

  /**
   * A warm socket that dies before a single byte crossed it in either
   * direction cost the client nothing yet: put the client back on hold and
   * dial fresh, so a pooled socket never fails a request a fresh dial would
   * have served. Returns true when it took over.
   */
  private redialIfUntouched(): boolean {
    const b = this.backend;
    const a = this.attempt;
    if (!this.poolHit || !b || !a || this.clientClosed || this.client.readableEnded) return false;
    if (b.bytesRead !== 0 || b.bytesWritten !== this.headerBytes) return false;
    b.removeListener('data', backendData);
    b.removeListener('data', backendDataShaped);
    b.removeListener('drain', backendDrain);
    this.client.removeListener('data', clientData);
    this.client.removeListener('data', clientDataShaped);
    this.client.pause();
    b.removeListener('close', backendClose);
    b.removeListener('end', backendEnd);
    b.destroy();
    this.lease?.end();
    this.lease = null;
    this.backend = null;
    this.target = null;
    this.poolHit = false;
    a.redialFresh();
    return true;
  }

  /**
   * The idle sweep's visit (see IdleSweep): idle_timeout, client_timeout,
   * server_timeout, tunnel_timeout (see side-timeouts.ts). Not before a
   * backend is attached: a dial has connect_timeout and a queued client
   * queue_timeout. A timeout names the session's end even after a FIN.
   */
  idleTick(now: number, d: SideDeadlines): void {
    if (this.target === null || this.ended) return;
    const cause = timedOut(this, now, d);
    if (cause === null) return;
    if (this.cause === 'client-closed' || this.cause === 'backend-closed') this.cause = cause;
    this.destroy(cause);
  }

  // Entry points of the shared listeners below (not for other callers).

  onLifetime(): void {
    this.destroy('max-lifetime');
  }

  onClientEnd(): void {
    this.cause ??= 'client-closed';
    if (this.backend) passFin(this.backend);
  }

  onBackendEnd(): void {
    if (this.redialIfUntouched()) return;
    this.cause ??= 'backend-closed';
    passFin(this.client);
  }

  onClientError(): void {
    this.cause ??= 'error';
    // A reset from the client is passed on as a reset, so the backend sees an abort, not a clean end.
    const b = this.backend;
    if (b) abort(b);
  }

  onBackendError(): void {
    if (this.redialIfUntouched()) return;
    if (this.target && this.cause === null) this.host.backends.sessionAborted(this.target);
    this.cause ??= 'error';
    // The client must not mistake a truncated reply for a complete one: reset, never FIN.
    abort(this.client);
  }

  onClientClose(hadError: boolean): void {
    this.clientClosed = true;
    this.headerCleanup?.();
    this.attempt?.cancel();
    // A clean close leaves the backend leg to flush what it still holds; an abort takes it down.
    if (hadError && this.backend && !this.backend.destroyed) this.backend.destroy();
    this.maybeEnd();
  }

  onBackendClose(hadError: boolean): void {
    this.backendClosed = true;
    if (hadError && !this.client.destroyed) this.client.destroy();
    this.maybeEnd();
  }

  private maybeEnd(): void {
    if (this.ended || !this.clientClosed || (this.backend !== null && !this.backendClosed)) return;
    this.ended = true;
    if (this.lifeTimer) clearTimeout(this.lifeTimer);
    const b = this.backend;
    if (b) this.lease?.end(b.bytesRead, b.bytesWritten);
    this.host.sessionEnded(this);
  }
}
