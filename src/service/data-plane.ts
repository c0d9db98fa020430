import type { Socket } from 'node:net';
import type { ServiceConfig } from '../config/schema.js';
import { ListenError } from '../errors.js';
import { type ServiceDispatcher, serviceDispatcher } from '../http/dispatcher.js';
import type { HttpHost } from '../http/host.js';
import type { SocketSource } from '../lifecycle/passed-sockets.js';
import { WarmPool } from '../pool/warm-pool.js';
import { Admission } from '../proxy/admission.js';
import { Dialer, type DialerDeps } from '../proxy/dialer.js';
import { EmbeddedDial } from '../proxy/embedded-dial.js';
import { Listener } from '../proxy/listener.js';
import { OpenSessions } from '../proxy/sessions.js';
import {
  CertificateError,
  certificateErrorAt,
  describeCertificate,
  type LoadedPair,
  loadTls,
} from '../proxy/tls/certificates.js';
import type { Routed } from '../proxy/tls/routed-session.js';
import { TlsTerminator } from '../proxy/tls/terminator.js';
import type { ServiceShared } from '../shared/cluster-gate.js';
import type { ServiceCore } from './core.js';

/**
 * The half of a service that carries clients: its listener, admission, open
 * sessions, the dialer with its wait queue, the warm pool, TLS termination
 * and the HTTP client. A single process has it, and so does each cluster
 * worker; the cluster primary has none.
 */
export class DataPlane {
  readonly admission: Admission;
  readonly sessions: OpenSessions;
  readonly dialer: Dialer;
  private warmPool: WarmPool;
  /** [tls]: this service terminates TLS (null: bytes pass through). */
  private terminator: TlsTerminator<Routed> | null = null;
  /** Bound at start (or handed over by a reload); null once given away. */
  private listener: Listener | null = null;
  /** One listener for each address of a listen list after the first (empty: one address). */
  private extras: Listener[] = [];
  /** Made at the first lb.dispatcher() or lb.request(): a service used only at layer 4 has none. */
  private http: ServiceDispatcher | null = null;

  constructor(
    /** The service: what this half, its dialer and its HTTP client read of it (the pool is this half's). */
    private readonly core: ServiceCore & HttpHost & DialerDeps,
    private readonly sockets: SocketSource | null,
    /** [cluster] redis: shared per-source limits and the gate that waits for a shared stick entry. */
    shared: ServiceShared | null = null,
  ) {
    const cfg = core.cfg;
    // Throws CertificateError: a service cannot start (nor a reload add it) without its
    // certificates. First, before anything holding a timer (Admission's sweep) exists: a
    // constructor that throws leaves nobody to stop it. (Its callbacks reach sessions later.)
    if (cfg.tls) this.terminator = this.keyed(() => this.createTerminator(cfg));
    this.warmPool = this.createPool(cfg);
    this.admission = new Admission(cfg, core.clock, shared ? (a, r) => shared.limiter(a, r) : null);
    const plane = this;
    // The service is the dialer's deps: it reads cfg, strategy, pool and backend TLS on each dial.
    this.dialer = new Dialer(core);
    this.sessions = new OpenSessions({
      get cfg() {
        return core.cfg;
      },
      get tls() {
        return plane.terminator;
      },
      backends: core.backends,
      clock: core.clock,
      stats: core.stats,
      admission: this.admission,
      dialer: this.dialer,
      queue: this.dialer.queue,
      fds: core.fds,
      gate: shared,
    });
  }

  /** The warm pool in force (replaced when a reload changes its settings). */
  get pool(): WarmPool {
    return this.warmPool;
  }

  get boundListener(): Listener | null {
    return this.listener;
  }

  /** Handshake failures by cause (all zero without [tls]). */
  get tlsFailures(): Readonly<Record<string, number>> {
    return this.terminator?.failures ?? {};
  }

  /** The certificates TLS is terminated with (none without [tls]). */
  get certificates(): readonly LoadedPair[] {
    return this.terminator?.pairs ?? [];
  }

  /**
   * Binds `listen` for this service without adopting it yet (a reload binds
   * everything first): until `adopt`, it closes whoever connects, so a reload
   * that fails later has taken no client in.
   */
  async bind(listen: ServiceConfig['listen']): Promise<Listener> {
    const on = this.sockets ? this.sockets.take(listen.address, listen) : null;
    if (on === null && listen.passed)
      throw new ListenError(`listen ${listen.address}: no socket was passed to this process`);
    return Listener.bindPending(listen, this.core.log, this.core.clock, on);
  }

  /** Serves from `l` from now on; the listener it had is closed unless it was given away (or is one of its extras now). */
  adopt(l: Listener): void {
    const old = this.listener;
    if (old && old !== l && !this.extras.includes(old)) old.stop();
    l.handTo(this.sessions);
    this.listener = l;
  }

  /** The listeners of the rest of its listen list (config alsoListen), in order. */
  get extraListeners(): readonly Listener[] {
    return this.extras;
  }

  /**
   * Serves from `list` too (the rest of a listen list); extras it had and no
   * longer lists are closed, unless one is its main listener now (`main`).
   */
  adoptExtras(list: readonly Listener[], main: Listener | null = null): void {
    for (const old of this.extras)
      if (!list.includes(old) && old !== this.listener && old !== main) old.stop();
    for (const l of list) l.handTo(this.sessions);
    this.extras = [...list];
  }

  /**
   * Gives bound listeners to other services (a reload renamed it, or reused
   * an address): `only` those (an address of its list others take), else
   * its main one.
   */
  giveAwayListener(only: ReadonlySet<Listener> | null = null): Listener | null {
    const l = this.listener;
    if (only !== null) this.extras = this.extras.filter((x) => !only.has(x));
    if (only !== null && l !== null && !only.has(l)) return null;
    this.listener = null;
    return l;
  }

  /** Binds (unless a reload hands it bound listeners), then fills the pool. */
  async start(listener: Listener | null, extras: readonly Listener[] | null = null): Promise<void> {
    this.adopt(listener ?? (await this.bind(this.core.cfg.listen)));
    if (extras === null) {
      const bound: Listener[] = [];
      try {
        for (const at of this.core.cfg.alsoListen) bound.push(await this.bind(at));
      } catch (err) {
        for (const l of bound) l.stop();
        throw err;
      }
      extras = bound;
    }
    this.adoptExtras(extras);
    this.warmPool.start();
  }

  stopAccepting(): void {
    this.listener?.stop();
    for (const l of this.extras) l.stop();
  }

  /** Stops accepting and pooling; open sessions and the wait queue carry on. */
  stop(): void {
    this.stopAccepting();
    this.admission.close();
    this.warmPool.close();
    void this.http?.close();
  }

  /** Resolves when every open session (and HTTP request under way) has ended. */
  async drained(): Promise<void> {
    await Promise.all([this.sessions.drained(), this.http?.close()]);
  }

  destroySessions(): void {
    this.sessions.destroyAll();
    void this.http?.destroy();
  }

  /** A connected socket to a backend, dialled as a client session would be (see LoadBalancer.connect). */
  connect(opts: { signal?: AbortSignal; key?: string }): Promise<Socket> {
    this.core.stats.counters.embedded++;
    return new EmbeddedDial(this.core.backends, this.dialer, opts.key ?? '', opts.signal).result;
  }

  /** The undici Dispatcher on this service's backends (see http/dispatcher.ts). */
  get dispatcher(): ServiceDispatcher {
    this.http ??= serviceDispatcher(this.core, this.core.name);
    return this.http;
  }

  /** Clients waiting for a backend slot now, and the longest wait so far (ms). */
  queueNow(): { length: number; longestWaitMs: number } {
    const q = this.dialer.queue;
    return { length: q.length, longestWaitMs: q.longestWaitMs(this.core.clock.now()) };
  }

  /** New backend TLS settings: pooled HTTP connections were made under the old ones. */
  dropHttpConnections(): void {
    this.http?.dropConnections();
  }

  /** apply_to_open: ends the sessions whose client the new allow/deny lists refuse. */
  endRefused(): void {
    const n = this.sessions.endRefused();
    this.core.stats.counters.endedDenied += n;
    if (n > 0)
      this.core.log.info({ sessions: n }, 'apply_to_open: sessions of clients now refused ended');
  }

  /** New pool settings (or backend TLS): the old pool's sockets are closed, never handed out. */
  restartPool(next: ServiceConfig, running: boolean): void {
    this.warmPool.close();
    this.warmPool = this.createPool(next);
    if (running) this.warmPool.start();
  }

  /**
   * The fallible half of a reload for [tls]: a service that gains it must
   * have readable, matching certificates, or the reload fails. A service that
   * had it already never fails here: applyTls keeps its old certificates
   * when the new files are bad.
   */
  checkTls(next: ServiceConfig): void {
    if (next.tls && !this.terminator)
      this.keyed(() => loadTls(next.tls as NonNullable<ServiceConfig['tls']>));
  }

  /** A CertificateError thrown out of this service names its key: "services.web.tls.cert: certificate …". */
  private keyed<T>(load: () => T): T {
    try {
      return load();
    } catch (err) {
      if (!(err instanceof CertificateError) || err.message.startsWith('services.')) throw err;
      throw new CertificateError(`${certificateErrorAt(this.core.name, err)}: ${err.message}`);
    }
  }

  /**
   * Re-reads the certificates on every reload (a renewed certificate keeps
   * its file name). New handshakes take them; open sessions keep theirs. Bad
   * files leave the old ones in force: the problem is logged and returned.
   */
  applyTls(next: ServiceConfig): string | null {
    if (!next.tls) {
      this.terminator = null;
      return null;
    }
    let err: CertificateError | null = null;
    if (this.terminator) {
      err = this.terminator.reload(next.tls, next.helloTimeoutMs);
      if (!err) this.warnExpiry(this.terminator);
    } else {
      try {
        this.terminator = this.createTerminator(next);
      } catch (e) {
        if (!(e instanceof CertificateError)) throw e;
        err = e;
      }
    }
    if (!err) return null;
    const msg = `${certificateErrorAt(this.core.name, err)}: ${err.message}; the previous certificates stay in force`;
    this.core.log.error({ err: err.message }, msg);
    return msg;
  }

  private createTerminator(cfg: ServiceConfig): TlsTerminator<Routed> {
    const t = new TlsTerminator<Routed>(
      cfg.tls as NonNullable<ServiceConfig['tls']>,
      cfg.helloTimeoutMs,
      (r, sock) => this.sessions.tlsReady(r, sock),
      (r, cause) => this.sessions.tlsFailed(r, cause),
      this.core.log,
    );
    this.warnExpiry(t);
    return t;
  }

  private warnExpiry(t: TlsTerminator<Routed>): void {
    for (const p of t.pairs) {
      const d = describeCertificate(p);
      if (d.problem) this.core.log.warn({ certificate: p.certFile }, d.problem);
    }
  }

  private createPool(cfg: ServiceConfig): WarmPool {
    const { backends, log, clock, localErrors } = this.core;
    const refillBaseMs = Math.max(cfg.retryDelayMs, 100);
    const pool = new WarmPool({
      cfg: cfg.pool,
      backends,
      refillBaseMs,
      log,
      clock,
      localErrors,
      upstream: this.core,
    });
    // Refills are connects too: a least-latency strategy learns from them (read at each refill, so a reload's strategy gets them).
    const core = this.core;
    pool.connectTimes = (b, ms, now) => core.strategy.observe?.(b, ms, now);
    return pool;
  }
}

/** A pool that never opens a socket (min_idle 0: no timer, no listener), for reads where no data plane is. */
export function emptyPool(core: ServiceCore): WarmPool {
  const { cfg, backends, log, clock, localErrors } = core;
  const pool = { ...cfg.pool, minIdle: 0 };
  return new WarmPool({
    cfg: pool,
    backends,
    refillBaseMs: 0,
    log,
    clock,
    localErrors,
    upstream: core,
  });
}
