import type { Socket } from 'node:net';
import type { BackendSet } from '../backend/backend-set.js';
import type { Clock } from '../clock.js';
import type { ServiceConfig } from '../config/schema.js';
import type { LbError } from '../errors.js';
import { noop } from '../noop.js';
import type { ServiceShared } from '../shared/cluster-gate.js';
import { AccessFlush } from './access-flush.js';
import type { SessionAccounting } from './accounting.js';
import type { Admission, Refusal } from './admission.js';
import { Bandwidth } from './bandwidth.js';
import type { Dialer } from './dialer.js';
import type { FdBudget } from './fd-budget.js';
import { IdleSweep } from './idle-sweep.js';
import { clientKey } from './ip-text.js';
import type { ListenerHost } from './listener.js';
import { Mirroring } from './mirror.js';
import { Session, type SessionHost, type TerminationCause } from './session.js';
import * as cuts from './session-cuts.js';
import type { FrontTarget } from './tls/front.js';
import { type Handshaking, type Routed, RoutedSession } from './tls/routed-session.js';
import type { HandshakeFailure, TlsTerminator } from './tls/terminator.js';
import type { WaitQueue } from './wait-queue.js';

/** What the sessions of a service share with it. */
export interface SessionsDeps {
  /** Read at each use, so a reload applies at once. */
  readonly cfg: ServiceConfig;
  readonly backends: BackendSet;
  readonly clock: Clock;
  readonly stats: SessionAccounting;
  readonly admission: Admission;
  readonly dialer: Dialer;
  readonly queue: WaitQueue;
  /** The process's descriptor reserve, shared by every service (null: not checked). */
  readonly fds: FdBudget | null;
  /** Read at each use: the service's TLS termination, replaced by a reload (null: none). */
  readonly tls: TlsTerminator<Routed> | null;
  /** [cluster] redis; may hold a session (bounded) before its limits and pick. */
  readonly gate?: ServiceShared | null;
}

/**
 * The open sessions of one service, from accept to close: the PROXY-sender
 * check, admission, the dial, the bookkeeping when a session ends (its source
 * released, its place handed to a waiting one), and draining.
 */
export class OpenSessions implements ListenerHost, SessionHost, FrontTarget {
  readonly backends: BackendSet;
  readonly clock: Clock;
  private readonly open = new Set<Session>();
  /** Clients in their TLS handshake: no session yet, but they count against max_connections. */
  /** Clients of a terminating service in their TLS handshake. */
  private readonly handshakes = new Set<Handshaking>();
  private drainWaiters: (() => void)[] = [];
  /** The last session id given (ids rise, so the open set is in id order). */
  private lastId = 0;
  private readonly idle: IdleSweep;
  /** upload_rate, download_rate and their per-source forms (see proxy/bandwidth.ts). */
  readonly bandwidth: Bandwidth;
  private readonly flush: AccessFlush<Session>;
  /** [mirror]: which sessions are copied, and the counts. */
  readonly mirroring = new Mirroring();

  constructor(private readonly deps: SessionsDeps) {
    this.backends = deps.backends;
    this.clock = deps.clock;
    this.idle = new IdleSweep(this.open, () => deps.cfg, deps.clock);
    this.bandwidth = new Bandwidth(() => deps.cfg, deps.clock);
    this.flush = new AccessFlush(
      this.open,
      () => deps.stats.accessIntervalMs,
      deps.clock,
      (s, now) => deps.stats.interim(s, now),
    );
  }

  get fds(): FdBudget | null {
    return this.deps.fds;
  }

  get cfg(): ServiceConfig {
    return this.deps.cfg;
  }

  get activeSessions(): number {
    return this.open.size + this.handshakes.size;
  }

  accept(client: Socket): void {
    const { stats, admission } = this.deps;
    stats.counters.accepted++;
    if (this.cfg.acceptProxy && !admission.trustedSender(client.remoteAddress ?? '')) {
      client.on('error', noop);
      stats.refusedProxy(client.remoteAddress, 'not a trusted PROXY sender');
      client.destroy();
      return;
    }
    // Without a PROXY header the socket's address is the client's: refuse before a session exists.
    if (admission.access !== null && !this.cfg.acceptProxy) {
      const ip = clientKey(client.remoteAddress ?? '');
      if (!admission.access.admits(ip)) {
        client.on('error', noop);
        stats.refusedDenied(ip, client);
        client.destroy();
        return;
      }
    }
    const s = new Session(this, client);
    // The access log names the client after the close, when the socket has no peer left.
    if (stats.logsClients) s.captureClientIp();
    s.id = ++this.lastId;
    this.open.add(s);
    this.deps.fds?.adjust(2);
    s.start();
  }

  trustedSender(ip: string): boolean {
    return this.deps.admission.trustedSender(ip);
  }

  get admission(): Admission {
    return this.deps.admission;
  }

  /** A client its front judged for this service, before its hello, and refused (see SharedAdmission). */
  refusedBeforeHello(client: Socket, ip: string, why: Refusal): void {
    const { stats } = this.deps;
    stats.counters.accepted++;
    if (why === 'denied') stats.refusedDenied(ip, client);
    else stats.refusedSource(ip, why);
  }

  /**
   * A client a front has read (proxy/tls/front.ts): its PROXY header and
   * hello are behind it, and the route it took is counted. Terminated here
   * when the service has [tls]; its session starts once the handshake is done.
   */
  acceptRouted(client: Socket, r: Routed): void {
    const { stats, admission } = this.deps;
    stats.counters.accepted++;
    if (r.route !== null) stats.routed(r.route);
    // The address the PROXY header gave, else the socket's.
    const ip = r.pass?.ip ?? clientKey(r.proxied?.srcAddr ?? client.remoteAddress ?? '');
    // allow/deny before any handshake, unless the front judged it already.
    if (r.pass === null && !admission.admits(ip)) {
      client.on('error', noop);
      stats.refusedDenied(ip, client);
      client.destroy();
      return;
    }
    if (this.activeSessions >= this.cfg.maxConnections) {
      r.pass?.limiter?.release(ip);
      stats.refusedAtLimit(client, 'max-connections');
      client.destroy();
      return;
    }
    const tls = this.deps.tls;
    if (tls) {
      // Per-source limits before the handshake: a source over its limit costs no ECDHE.
      let pass = r.pass;
      if (pass === null) {
        // Not held for Redis either: a shared limit decides at once (SharedLimits.acquireAtOnce).
        const lease = admission.lease({ clientIp: ip }, true);
        if (typeof lease === 'string') {
          client.on('error', noop);
          stats.refusedSource(ip, lease);
          client.destroy();
          return;
        }
        pass = { ip, limiter: lease };
      }
      const h: Handshaking = { ...r, raw: client, pass };
      // [cluster]: its stick key is read from Redis during the handshake, not after it.
      this.deps.gate?.prefetch({ clientIp: ip, serverName: r.serverName });
      this.handshakes.add(h);
      tls.handshake(client, h);
      return;
    }
    this.startRouted(client, r, false);
  }

  /** The terminator's word on a handshake this service started. */
  tlsReady(r: Routed, sock: Socket): void {
    this.handshakes.delete(r as Handshaking);
    this.startRouted(sock, r, true);
  }

  tlsFailed(r: Routed, _cause: HandshakeFailure): void {
    const h = r as Handshaking;
    this.handshakes.delete(h);
    h.pass.limiter?.release(h.pass.ip);
    this.maybeDrained();
  }

  private startRouted(client: Socket, r: Routed, terminated: boolean): void {
    const s = new RoutedSession(this, client, r, terminated);
    if (this.deps.stats.logsClients) s.captureClientIp();
    s.id = ++this.lastId;
    this.open.add(s);
    this.deps.fds?.adjust(2);
    s.startRead();
  }

  refused(client: Socket, limit: 'max-connections' | 'descriptors'): void {
    this.deps.stats.refusedAtLimit(client, limit);
  }

  admit(s: Session): void {
    // Behind a trusted proxy, the address its header gave is the one allow/deny judge.
    const access = this.deps.admission.access;
    // (A routed session was judged at acceptRouted.)
    if (
      access !== null &&
      this.cfg.acceptProxy &&
      !(s instanceof RoutedSession) &&
      !access.admits(s.clientIp)
    ) {
      this.deps.stats.refusedDenied(s.clientIp, null);
      s.refuse('refused-denied');
      return;
    }
    // [cluster] redis: a local miss (stick key, used-up lease) may wait for Redis, boundedly,
    // watched meanwhile as a queued client is. A routed session's limits were taken already.
    const limiter = s instanceof RoutedSession ? null : this.deps.admission.current;
    if (this.deps.gate?.hold(s, limiter, () => this.admitted(s))) s.waiting();
    else this.admitted(s);
  }

  /** Admission's limits, then the dial (after the cluster gate, if it held the session). */
  private admitted(s: Session): void {
    // Held by the cluster gate, the client may have left (or been refused) meanwhile.
    if (s.cause !== null || s.client.destroyed) return;
    // Judged before its session (its address captured then): its lease is taken already.
    const pass = s instanceof RoutedSession ? s.pass : null;
    const lease = pass !== null ? pass.limiter : this.deps.admission.lease(s);
    if (typeof lease === 'string') {
      this.deps.stats.refusedSource(s.clientIp, lease);
      s.refuse('refused-limit');
      return;
    }
    s.sourceLimiter = lease;
    // Before the dial, which may hand a warm socket over (and start the client's flow) at once.
    const cfg = this.cfg;
    if (cfg.mirror !== null)
      s.mirror = this.mirroring.tap(cfg.mirror, s.client, cfg.connectTimeoutMs);
    s.attempt = this.deps.dialer.begin(s, null, true);
  }

  proxyHeaderFailed(s: Session, reason: string): void {
    this.deps.stats.refusedProxy(s.client.remoteAddress, reason);
  }

  sessionReady(s: Session): void {
    // Before the data listeners are chosen (Session.attach); once (a fresh redial keeps it).
    s.shaper ??= this.bandwidth.shaperFor(s);
    this.idle.ensure();
    this.flush.ensure();
    this.deps.stats.ready(s);
  }

  dialFailed(s: Session, err: LbError): void {
    this.deps.stats.dialFailed(s, err);
  }

  sessionFailed(s: Session, err: unknown): void {
    this.deps.stats.sessionFailed(s, err);
  }

  sessionEnded(s: Session): void {
    this.open.delete(s);
    this.deps.fds?.adjust(-2);
    s.sourceLimiter?.release(s.clientIp);
    if (s.shaper !== null) this.bandwidth.release(s.shaper, s.clientIp);
    this.deps.stats.ended(s, this.clock.now());
    if (this.deps.queue.length > 0) this.deps.queue.serve();
    this.maybeDrained();
  }

  /** Ends the open sessions on one backend now (an operator disabled it, or on_down / on_up_primary). */
  endOn(address: string, cause: TerminationCause = 'shutdown'): number {
    return cuts.endOn(this.open, address, cause);
  }

  /** apply_to_open: ends the sessions whose client the allow/deny lists now refuse. */
  endRefused(): number {
    return cuts.endRefused(this.open, this.deps.admission.access, this.cfg.acceptProxy);
  }

  /** The open sessions, oldest first (read by the admin API and /metrics; never on the hot path). */
  get all(): ReadonlySet<Session> {
    return this.open;
  }

  /** Ends one open session by its id, as an operator's disable would; false when it is not open. */
  endOne(id: number): boolean {
    return cuts.endOne(this.open, id);
  }

  destroyAll(): void {
    for (const s of this.open) s.destroy('shutdown');
    // Mid-handshake clients too: their 'close' reaches the terminator, which reports the failure.
    for (const h of this.handshakes) h.raw.destroy();
  }

  /** Resolves when every open session has ended (and every handshake under way). */
  drained(): Promise<void> {
    if (this.open.size === 0 && this.handshakes.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private maybeDrained(): void {
    if (this.open.size > 0 || this.handshakes.size > 0 || this.drainWaiters.length === 0) return;
    const w = this.drainWaiters;
    this.drainWaiters = [];
    for (const f of w) f();
  }
}
