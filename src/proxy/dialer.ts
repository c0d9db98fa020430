import type { Backend } from '../backend/backend.js';
import type { BackendSet } from '../backend/backend-set.js';
import type { ConnectFailure } from '../backend/causes.js';
import type { SlotLease } from '../backend/lease.js';
import type { Strategy } from '../balancer/strategy.js';
import type { Clock } from '../clock.js';
import { MAX_RETRY_DELAY_MS } from '../config/limits.js';
import type { ServiceConfig } from '../config/schema.js';
import { DialError, type LbError, NoBackendError } from '../errors.js';
import type { LocalErrors } from '../local-errors.js';
import type { Logger } from '../logger.js';
import type { PooledSocket, WarmPool } from '../pool/warm-pool.js';
import type { Connector } from '../upstream/connector.js';
import { type AttemptOwner, DialAttempt, type DialRequester } from './dial-attempt.js';
import { WaitQueue } from './wait-queue.js';

/**
 * What the dialer reads from its service; `cfg`, `strategy`, `pool` and
 * `connector` are read on every dial, so a reload takes effect at once.
 */
export interface DialerDeps {
  readonly cfg: ServiceConfig;
  readonly backends: BackendSet;
  readonly strategy: Strategy;
  readonly log: Logger;
  readonly pool: WarmPool;
  /** The service's connector (connect_timeout, backend_tls). */
  readonly connector: Connector;
  readonly clock: Clock;
  /** The balancer's own resource errors: never counted against a backend. */
  readonly localErrors: LocalErrors;
  /** Plain counters, read at scrape time. */
  readonly counters: { retries: number; queued: number };
}

/**
 * Gets a requester its backend socket: picks a backend, takes a warm socket
 * or connects with a deadline, and on failure retries on a backend not yet
 * tried, backing off retry_delay, 2x, 4x... Retries happen only here, before
 * any client byte was written to a backend (house rule 8). Each request is a
 * DialAttempt that this class creates and alone changes.
 */
export class Dialer implements AttemptOwner {
  /** Attempts waiting for a slot while every candidate is at its cap (queue_size, queue_timeout). */
  readonly queue: WaitQueue;

  constructor(private readonly deps: DialerDeps) {
    const { name, queueSize, queueTimeoutMs } = deps.cfg;
    this.queue = new WaitQueue(name, this, deps.clock, deps.counters, queueSize, queueTimeoutMs);
  }

  /**
   * Starts serving `req`; the attempt is what the requester cancels if it
   * leaves. `servername`: with backend_tls, the TLS server name for this
   * client's backend connection instead of the configured one (SNI routing
   * passing the client's name on); such a dial never takes a warm socket,
   * which was handshaken under the configured name.
   */
  begin(
    req: DialRequester,
    /** ip-hash's key; null: the requester's clientIp, read only when a strategy asks for it. */
    clientIp: string | null,
    canWait: boolean,
    servername: string | null = null,
  ): DialAttempt {
    const a = new DialAttempt(this, req, clientIp, canWait);
    if (servername !== null) {
      a.servername = servername;
      a.noPool = true;
    }
    this.run(a);
    return a;
  }

  /** One pick and dial (or a place in the queue). Also how the wait queue retries an attempt. */
  run(a: DialAttempt): void {
    if (a.done) return;
    a.enter('picking');
    const d = this.deps;
    const now = d.clock.now();
    a.now = now;
    a.rememberPicked();
    const b = d.strategy.pick(a);
    if (!b) {
      if (d.backends.candidates.length === 0 || d.strategy.emptyFor?.(a))
        this.fail(a, new NoBackendError(d.cfg.name));
      // Every candidate is at its cap: a session waits for a slot; an embedded connect() fails (its caller decides).
      else if (a.canWait) this.queue.offer(a);
      else this.fail(a, new NoBackendError(d.cfg.name, 'every backend is at its limit'));
      return;
    }
    a.lease = d.backends.reserve(b, now);
    a.picked = b;
    a.dials++;
    if (b.halfOpen) d.backends.beginTrial(b);
    const pooled = a.noPool ? null : d.pool.take(b);
    if (pooled) {
      // The requester's listeners go on before the pool's come off: never without an 'error' listener.
      this.handOver(a, pooled);
      d.pool.detach(pooled);
      return;
    }
    this.connect(a, b);
  }

  /** A warm socket failed untouched after checkout: dial again, fresh; counts as a retry. */
  redial(a: DialAttempt): void {
    a.enter('picking');
    a.noPool = true;
    this.deps.counters.retries++;
    this.run(a);
  }

  cancel(a: DialAttempt): void {
    a.enter('done');
    if (a.retryTimer) clearTimeout(a.retryTimer);
    a.retryTimer = null;
    a.pending?.destroy();
    a.pending = null;
    if (a.lease) this.deps.backends.abandonTrial(a.lease.backend);
    this.unreserve(a);
    if (a.queuedAt !== 0) this.queue.remove(a);
  }

  /** Tells the requester it failed (no backend, every retry failed, or the wait for a slot ended). */
  fail(a: DialAttempt, err: LbError): void {
    a.enter('done');
    a.requester.dialFailed(a, err);
  }

  private handOver(a: DialAttempt, pooled: PooledSocket | null): void {
    const sock = pooled ? pooled.socket : a.pending;
    const lease = a.lease;
    a.lease = null;
    a.pending = null;
    a.enter('done');
    // Never null: a fresh dial hands over its connected `pending` socket, and run() leased its backend.
    a.requester.dialed(a, sock as NonNullable<typeof sock>, lease as SlotLease, pooled);
  }

  private connect(a: DialAttempt, b: Backend): void {
    const d = this.deps;
    a.enter('connecting');
    a.pending = d.connector.connect(
      b,
      (failure) => {
        if (failure !== null) {
          a.pending = null;
          this.failed(a, b, failure);
          return;
        }
        d.backends.reportDialSuccess(b);
        // The connect's time, for a latency-aware strategy (a.now is the pick, this tick's connect start).
        if (d.strategy.observe !== undefined) {
          const now = d.clock.now();
          d.strategy.observe(b, now - a.now, now);
        }
        this.handOver(a, null);
      },
      a.servername,
    );
  }

  private unreserve(a: DialAttempt): void {
    a.lease?.end();
    a.lease = null;
  }

  /** Records the failure, then retries with backoff or gives up. */
  private failed(a: DialAttempt, b: Backend, failure: ConnectFailure): void {
    const cause = failure.detail;
    if (a.lease?.backend === b) this.unreserve(a);
    if (this.deps.localErrors.claim(failure, 'dial', b.address))
      this.deps.backends.recordLocalDialFailure(b);
    else this.deps.backends.recordDialFailure(b, failure);
    a.recordFailure({ backend: b.address, cause });
    if (a.done) return;
    const { maxRetries, retryDelayMs, name } = this.deps.cfg;
    const failures = a.failures.length;
    if (failures > maxRetries) {
      this.fail(a, new DialError(name, a.failures));
      return;
    }
    // Capped: uncapped doubling passes setTimeout's 2^31-1 ms from retry 26 (which then fires at once).
    const delay = Math.min(retryDelayMs * 2 ** (failures - 1), MAX_RETRY_DELAY_MS);
    this.deps.log.debug({ backend: b.address, cause, retryInMs: delay }, 'dial failed; retrying');
    a.enter('backoff');
    a.retryTimer = setTimeout(() => {
      a.retryTimer = null;
      this.deps.counters.retries++;
      this.run(a);
    }, delay);
  }
}
