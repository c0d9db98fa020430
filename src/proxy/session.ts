import type { Socket } from 'node:net';
import type { Backend } from '../backend/backend.js';
import type { SlotLease } from '../backend/lease.js';
import type { LbError } from '../errors.js';
import { noop } from '../noop.js';
import type { PooledSocket } from '../pool/warm-pool.js';
import type { DialAttempt, DialRequester } from './dial-attempt.js';
import { readProxyHeader } from './header-reader.js';
import { headerFor } from './proxy-protocol.js';
import { QueuedClient } from './queue-watch.js';
import {
  dialFailureCause,
  type HostOf,
  type SessionPhase,
  type TerminationCause,
} from './session-host.js';
import {
  abort,
  PLAIN,
  passFin,
  splice,
  unsplice,
  wireBackend,
  wireClient,
  wireClientFlow,
  wireFailedBackend,
} from './session-listeners.js';
import { SessionTraffic } from './session-traffic.js';
import { SHAPED } from './shaped-listeners.js';
import { closesPlainly, quietFrom, type SideDeadlines, timedOut } from './side-timeouts.js';

export type { SessionConfig, SessionPhase, TerminationCause } from './session-host.js';

/** What a session reaches of its service (proxy/sessions.ts's OpenSessions). */
export type SessionHost = HostOf<Session>;

/**
 * One client <-> backend pair. The client is accepted paused and is not read
 * until its backend socket is connected, so nothing needs buffering during the
 * dial. Once attached, bytes flow both ways with backpressure; a FIN on one
 * side becomes a FIN on the other (half-close carried, allowHalfOpen), a reset
 * on one side becomes a reset on the other, and an idle deadline ends both.
 */
export class Session extends SessionTraffic implements DialRequester {
  /** Where it is in its life (see SessionPhase); changed only by `enter`. */
  phase: SessionPhase = 'accepted';
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
  private headerBytes = 0;
  private lifeTimer: NodeJS.Timeout | null = null;
  private headerCleanup: (() => void) | null = null;

  /** Made when it queues: the watch that sees the client leave, and what it sent meanwhile. */
  private queued: QueuedClient | null = null;
  private clientClosed = false;
  private backendClosed = false;
  private clientWired = false;

  constructor(
    private readonly host: SessionHost,
    client: Socket,
  ) {
    super(client);
    this.acceptedAt = host.clock.now();
    wireClient(client, this);
  }

  start(): void {
    try {
      if (this.host.cfg.acceptProxy) this.readProxyHeader();
      else this.admit();
    } catch (err) {
      this.crashed(err);
    }
  }

  /** A client whose PROXY header (if any) was read before this session existed (see proxy/tls/front.ts). */
  startRead(): void {
    this.admit();
  }

  /** The one change of its phase. */
  private enter(phase: SessionPhase): void {
    this.phase = phase;
  }

  /** To admission, then the dial; what throws there closes this session only. */
  private admit(): void {
    try {
      this.enter('connecting');
      this.host.admit(this);
    } catch (err) {
      this.crashed(err);
    }
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
    this.enter('header');
    this.headerCleanup = readProxyHeader(this.client, (failure, addresses) => {
      this.headerCleanup = null;
      if (failure !== null) {
        this.host.proxyHeaderFailed(this, failure);
        this.refuse('refused-proxy');
        return;
      }
      if (addresses) this.proxiedBy(addresses);
      this.admit();
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
      wireFailedBackend(sock, this);
      this.crashed(err);
    }
  }

  private attach(sock: Socket, lease: SlotLease, pooled: PooledSocket | null): void {
    const target = lease.backend;
    this.lease = lease;
    this.enter('spliced');
    this.queued?.stop();
    this.target = target;
    this.poolHit = pooled !== null;
    this.readyAt = this.host.clock.now();
    this.host.backends.sessionOpened(target);
    wireBackend(sock, this);
    quietFrom(this, this.readyAt);
    if (!this.clientWired) {
      this.clientWired = true;
      wireClientFlow(this.client);
    }
    if (this.host.cfg.sendProxy) {
      // Written at hand-over, not at connect, so a warm socket never carries another client's header.
      const header = headerFor(this.client, this.proxied, this.host.cfg.sendProxy);
      this.headerBytes = header.length;
      sock.write(header);
      this.mirror?.header(header);
    }
    if (this.lifeTimer === null && this.host.cfg.maxLifetimeMs > 0) {
      const left = Math.max(0, this.host.cfg.maxLifetimeMs - (this.readyAt - this.acceptedAt));
      this.lifeTimer = setTimeout(() => this.onLifetime(), left);
    }
    this.queued?.flushTo(sock, this.mirror);
    if (pooled) for (const chunk of pooled.early) this.client.write(chunk);
    this.host.sessionReady(this);
    this.mirror?.follow();
    // A session with a bandwidth limit (given at sessionReady) gets the pacing data listeners.
    splice(this.client, sock, this.shaper === null ? PLAIN : SHAPED);
    // Explicit: after a pooled socket's swap the client was paused, and 'data' alone does not resume.
    this.client.resume();
    if (this.client.readableEnded) sock.end();
  }

  /** Queued: watch the client, so one that leaves frees its place at once (see watchQueued). */
  waiting(): void {
    if (this.queued?.watching || this.clientClosed || this.client.readableEnded) return;
    this.enter('queued');
    this.queued ??= new QueuedClient();
    this.queued.watch(this.client, () => this.refuse('client-closed'));
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
    this.cause = dialFailureCause(err);
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
    unsplice(this.client, b, this.shaper === null ? PLAIN : SHAPED);
    b.destroy();
    this.lease?.end();
    this.lease = null;
    this.backend = null;
    this.target = null;
    this.poolHit = false;
    this.enter('connecting');
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
    if (this.phase !== 'spliced') return;
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
    if (this.phase === 'ended' || !this.clientClosed) return;
    if (this.backend !== null && !this.backendClosed) return;
    this.enter('ended');
    if (this.lifeTimer) clearTimeout(this.lifeTimer);
    const b = this.backend;
    if (b) this.lease?.end(b.bytesRead, b.bytesWritten);
    this.host.sessionEnded(this);
  }
}
