import type { Socket } from 'node:net';
import type { Clock } from '../clock.js';
import type { LbError, LimitError } from '../errors.js';
import { CONNECT_BUCKETS, Histogram } from '../histogram.js';
import { LogThrottle } from '../log-throttle.js';
import type { Logger } from '../logger.js';
import type { Session } from './session.js';
import { RoutedSession } from './tls/routed-session.js';

/** Plain counters, read by metrics at scrape time. */
export interface ServiceCounters {
  accepted: number;
  /** Turned away at the service's max_connections. */
  refusedLimit: number;
  /** Turned away because open descriptors neared the process's limit (see FdBudget). */
  refusedDescriptors: number;
  /** Every backend at its cap and the wait queue full. */
  refusedQueueFull: number;
  /** Waited queue_timeout for a backend slot without getting one. */
  refusedQueueTimeout: number;
  /** Sessions that had to wait for a backend slot. */
  queued: number;
  /** Backend sockets handed out by LoadBalancer.connect(). */
  embedded: number;
  refusedNoBackend: number;
  /** An untrusted PROXY sender, or a header missing, malformed or late. */
  refusedProxy: number;
  refusedSourceConnections: number;
  refusedSourceRate: number;
  /** Not in the service's allow list, or in its deny list. */
  refusedDenied: number;
  /** Open sessions ended by a reload with apply_to_open, their client now denied. */
  endedDenied: number;
  /** Open sessions ended by health.on_down (their backend marked down). */
  endedBackendDown: number;
  /** Open sessions on backups ended by health.on_up_primary (a primary came back). */
  endedPrimaryBack: number;
  /** Open sessions ended by a deadline: idle_timeout, client_timeout, server_timeout, tunnel_timeout. */
  endedIdleTimeout: number;
  endedClientTimeout: number;
  endedServerTimeout: number;
  endedTunnelTimeout: number;
  connectFailed: number;
  retries: number;
  bytesFromClients: number;
  bytesToClients: number;
  /** Sessions closed because their own code threw (see Session.crashed). */
  sessionErrors: number;
}

/** Session lengths: 1 ms to 1 h. */
const SESSION_BUCKETS = Object.freeze([0.001, 0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600]);

/**
 * One service's session bookkeeping: counters, latency histograms, why
 * clients were refused, and the access-log line. Plain numbers bumped on the
 * hot path, read by metrics and the admin API at scrape time.
 */
export class SessionAccounting {
  readonly counters: ServiceCounters = {
    accepted: 0,
    refusedLimit: 0,
    refusedDescriptors: 0,
    refusedQueueFull: 0,
    refusedQueueTimeout: 0,
    queued: 0,
    embedded: 0,
    refusedNoBackend: 0,
    refusedProxy: 0,
    refusedSourceConnections: 0,
    refusedSourceRate: 0,
    refusedDenied: 0,
    endedDenied: 0,
    endedBackendDown: 0,
    endedPrimaryBack: 0,
    endedIdleTimeout: 0,
    endedClientTimeout: 0,
    endedServerTimeout: 0,
    endedTunnelTimeout: 0,
    connectFailed: 0,
    retries: 0,
    bytesFromClients: 0,
    bytesToClients: 0,
    sessionErrors: 0,
  };
  /** Accept to backend-ready, split by whether the backend leg came warm from the pool. */
  readonly connectLatency = {
    hit: new Histogram(CONNECT_BUCKETS),
    miss: new Histogram(CONNECT_BUCKETS),
  };
  /** Accept to close, for sessions that reached a backend. */
  readonly sessionDuration = new Histogram(SESSION_BUCKETS);
  /**
   * Clients routed here by SNI, by the sni pattern that matched (the route):
   * bounded by the config, never by the names clients send.
   */
  readonly routes: Record<string, number> = {};
  private accessLog: Logger | null = null;
  private accessEveryMs = 0;

  /** [log] access_interval while the access log is on; 0: no interim lines. */
  get accessIntervalMs(): number {
    return this.accessLog ? this.accessEveryMs : 0;
  }

  /** The access log is on: it names each session's client, whose address must be read while the socket is open. */
  get logsClients(): boolean {
    return this.accessLog !== null;
  }
  /** An outage refuses every client: one warning a second, saying how many it stands for. */
  private readonly outageLog: LogThrottle;
  private readonly crashLog: LogThrottle;
  private readonly fdLog: LogThrottle;

  constructor(
    private readonly log: Logger,
    accessLog: boolean,
    clock: Clock,
    /** Before a session's id in its access lines: "" alone, "2." in worker 2, as GET …/sessions shows ids. */
    private readonly idPrefix = '',
  ) {
    this.setAccessLog(accessLog);
    this.outageLog = new LogThrottle(1000, clock);
    this.crashLog = new LogThrottle(1000, clock);
    this.fdLog = new LogThrottle(5000, clock);
  }

  /** [log] access turned on or off (and access_interval set) at start or by a reload. */
  setAccessLog(on: boolean, intervalMs = 0): void {
    this.accessEveryMs = intervalMs;
    if (on && !this.accessLog) this.accessLog = this.log.child({ log: 'access' });
    if (!on) this.accessLog = null;
  }

  /** Turned away at max_connections or at the descriptor reserve, before a session existed. */
  refusedAtLimit(client: Socket, limit: 'max-connections' | 'descriptors'): void {
    if (limit === 'descriptors') {
      this.counters.refusedDescriptors++;
      const held = this.fdLog.pass();
      if (held >= 0)
        this.log.warn(
          { client: client.remoteAddress, alsoRefused: held },
          'refused: open descriptors near the limit (kept for probes, pool and admin)',
        );
    } else {
      this.counters.refusedLimit++;
      this.log.debug({ client: client.remoteAddress }, 'refused: max_connections reached');
    }
    this.accessLog?.info({
      session: null,
      client: `${client.remoteAddress}:${client.remotePort}`,
      backend: null,
      bytesIn: 0,
      bytesOut: 0,
      ms: 0,
      cause: 'refused-limit',
    });
  }

  routed(pattern: string): void {
    this.routes[pattern] = (this.routes[pattern] ?? 0) + 1;
  }

  refusedSource(ip: string, limit: 'connections' | 'rate'): void {
    if (limit === 'connections') this.counters.refusedSourceConnections++;
    else this.counters.refusedSourceRate++;
    this.log.debug({ client: ip, limit }, 'refused: per-source limit');
  }

  /**
   * Refused by allow/deny. `client`: refused at accept, before any session
   * (its access-log line is written here); null: a session refused after its
   * PROXY header, logged when it ends.
   */
  refusedDenied(ip: string, client: Socket | null): void {
    this.counters.refusedDenied++;
    this.log.debug({ client: ip }, 'refused: allow/deny');
    if (client === null) return;
    this.accessLog?.info({
      session: null,
      client: `${ip}:${client.remotePort ?? ''}`,
      backend: null,
      bytesIn: 0,
      bytesOut: 0,
      ms: 0,
      cause: 'refused-denied',
    });
  }

  refusedProxy(ip: string | undefined, reason: string): void {
    this.counters.refusedProxy++;
    this.log.debug({ client: ip, reason }, 'refused: PROXY header');
  }

  /** A session's dial ended without a backend. */
  dialFailed(s: Session, err: LbError): void {
    if (err.code === 'LB_ERR_LIMIT') {
      if ((err as LimitError).limit === 'queue-full') this.counters.refusedQueueFull++;
      else this.counters.refusedQueueTimeout++;
      this.log.debug(
        { client: s.clientIp, limit: (err as LimitError).limit },
        'refused: every backend at its limit',
      );
      return;
    }
    if (err.code === 'LB_ERR_NO_BACKEND') this.counters.refusedNoBackend++;
    else this.counters.connectFailed++;
    const held = this.outageLog.pass();
    if (held < 0) return;
    this.log.warn(
      {
        client: s.clientIp,
        err: err.message,
        attempts: s.attempt?.failures ?? [],
        alsoRefused: held,
      },
      'session refused: no backend reachable',
    );
  }

  /** A session's own code threw; it was closed. Logged with the stack, at most once a second. */
  sessionFailed(s: Session, err: unknown): void {
    this.counters.sessionErrors++;
    const held = this.crashLog.pass();
    if (held < 0) return;
    this.log.error({ client: s.clientIp, err, alsoFailed: held }, 'session failed; closed');
  }

  ready(s: Session): void {
    const seconds = (s.readyAt - s.acceptedAt) / 1000;
    (s.poolHit ? this.connectLatency.hit : this.connectLatency.miss).observe(seconds);
  }

  ended(s: Session, now: number): void {
    if (s.readyAt > 0) this.sessionDuration.observe((now - s.acceptedAt) / 1000);
    if (this.accessLog) this.writeAccessLog(this.accessLog, s, now, false);
    this.counters.bytesFromClients += s.client.bytesRead;
    this.counters.bytesToClients += s.client.bytesWritten;
    const c = this.counters;
    if (s.cause === 'idle-timeout') c.endedIdleTimeout++;
    else if (s.cause === 'client-timeout') c.endedClientTimeout++;
    else if (s.cause === 'server-timeout') c.endedServerTimeout++;
    else if (s.cause === 'tunnel-timeout') c.endedTunnelTimeout++;
  }

  /** An open session's line so far ([log] access_interval): the same fields, "interim": true, no cause yet. */
  interim(s: Session, now: number): void {
    if (this.accessLog) this.writeAccessLog(this.accessLog, s, now, true);
  }

  /** One line per closed session, with a termination cause from a fixed set (and interim ones while it is open). */
  private writeAccessLog(log: Logger, s: Session, now: number, interim: boolean): void {
    const c = s.client;
    const b = s.backend;
    const a = s.attempt;
    log.info({
      session: `${this.idPrefix}${s.id}`,
      ...(interim ? { interim: true } : {}),
      client: `${s.clientIp}:${c.remotePort ?? ''}`,
      backend: s.target?.address ?? a?.failures[a.failures.length - 1]?.backend ?? null,
      // Its name when it has one of its own (left out when it goes by its address).
      backendName: s.target && s.target.name !== s.target.address ? s.target.name : undefined,
      bytesIn: c.bytesRead,
      bytesOut: c.bytesWritten,
      backendBytesIn: b?.bytesRead ?? 0,
      backendBytesOut: b?.bytesWritten ?? 0,
      ms: Math.round(now - s.acceptedAt),
      connectMs: s.readyAt > 0 ? Math.round((s.readyAt - s.acceptedAt) * 1000) / 1000 : null,
      pool: s.readyAt > 0 ? (s.poolHit ? 'hit' : 'miss') : null,
      retries: Math.max(0, (a?.dials ?? 0) - 1),
      // Why each failed dial failed ("ECONNREFUSED", "tls: certificate has expired"); left out when none did.
      dialFailures: a && a.failures.length > 0 ? a.failures : undefined,
      cause: interim ? null : (s.cause ?? 'client-closed'),
      // The route it took, on a service with routes (left out on the others).
      route: a?.routeName ?? undefined,
      ...(s instanceof RoutedSession ? { sni: s.serverName, tls: s.terminated } : {}),
    });
  }
}
