import type { Socket } from 'node:net';
import type { Backend } from '../backend/backend.js';
import type { SlotLease } from '../backend/lease.js';
import type { PickContext } from '../balancer/strategy.js';
import type { LbError } from '../errors.js';
import type { PooledSocket } from '../pool/warm-pool.js';

/**
 * Whoever asked for a backend socket (a client Session, or an embedded
 * `LoadBalancer.connect()`): told once, with a socket or with why not.
 */
export interface DialRequester {
  /** The client's address as a key, read on demand (see Session.clientIp). */
  readonly clientIp?: string;
  /** The SNI name a routed session's hello gave, for a stick table on = "sni". */
  readonly serverName?: string | null;
  /** A connected socket to `target`; `pooled` when it came warm from the pool, with what its backend sent so far. */
  /** The requester now holds `lease` (the backend's slot) and must end it. */
  dialed(a: DialAttempt, sock: Socket, lease: SlotLease, pooled: PooledSocket | null): void;
  /** No backend could be picked, every dial failed, or the wait for a slot ended. */
  dialFailed(a: DialAttempt, err: LbError): void;
  /** Joined the wait queue: a requester that can tell its client left should cancel then. */
  waiting?(a: DialAttempt): void;
}

/**
 * Where an attempt is (one field, DialAttempt.phase, changed only by its
 * `enter`): a pick under way, a connect in flight, the backoff before a
 * retry, a place in the wait queue, or done (socket handed over, failure
 * told, or cancelled: nothing more happens to it).
 */
export type AttemptPhase = 'picking' | 'connecting' | 'backoff' | 'queued' | 'done';

/** What the dialer does for an attempt it owns. */
export interface AttemptOwner {
  cancel(a: DialAttempt): void;
  redial(a: DialAttempt): void;
}

export interface DialFailure {
  backend: string;
  cause: string;
}

/** Shared by every attempt that has none: most dials succeed at once, and allocate no list. */
const NO_BACKENDS: readonly Backend[] = Object.freeze([]);
const NO_FAILURES: readonly DialFailure[] = Object.freeze([]);

/**
 * One request for a backend socket and everything the dialer keeps while it
 * is served: the backends tried, the failures, the slot reserved, the connect
 * in flight, the backoff timer, its place in the wait queue. The Dialer
 * creates and changes it; the requester holds it only to `cancel()` (its
 * client left) or to `redialFresh()`. It is also the strategy's PickContext,
 * so a dial allocates nothing more per pick.
 */
export class DialAttempt implements PickContext {
  now = 0;
  /**
   * Backends picked before the pick under way (the strategy skips them while
   * another is available). Allocated at the first retry: `picked` holds the
   * backend of the current dial until the next pick moves it here.
   */
  tried: readonly Backend[] = NO_BACKENDS;
  /** The backend of the latest pick, not yet in `tried`. */
  picked: Backend | null = null;
  /** Picks made (the first dial and every retry). */
  dials = 0;
  /** Each failed dial, in order; allocated at the first failure. */
  failures: readonly DialFailure[] = NO_FAILURES;
  /** The slot of the backend picked for the dial under way, until the socket is handed over (with it) or the dial fails. */
  lease: SlotLease | null = null;
  /** A connect in flight. */
  pending: Socket | null = null;
  retryTimer: NodeJS.Timeout | null = null;
  /** Set after a pooled socket failed: further attempts dial fresh. */
  noPool = false;
  /** With backend_tls: the server name for this dial instead of the configured one (see Dialer.begin). */
  servername: string | null = null;
  /** When it joined the service's wait queue (clock ms); 0 when not queued. */
  queuedAt = 0;
  /** Where it is (see AttemptPhase); changed by `enter`, by the Dialer and its wait queue only. */
  phase: AttemptPhase = 'picking';

  constructor(
    private readonly owner: AttemptOwner,
    readonly requester: DialRequester,
    /** The key ip-hash reads; null: the requester's client address, read only if a strategy asks. */
    private readonly key: string | null,
    /** May join the service's wait queue when every backend is at its cap (sessions may; connect() does not). */
    readonly canWait: boolean,
  ) {}

  /** The one change of its phase. */
  enter(phase: AttemptPhase): void {
    this.phase = phase;
  }

  /** Settled (socket handed over, or failure told) or cancelled: nothing more happens to it. */
  get done(): boolean {
    return this.phase === 'done';
  }

  get clientIp(): string {
    return this.key ?? this.requester.clientIp ?? '';
  }

  /** The stick key of on = "sni" (null: not a routed session, or no name sent). */
  get serverName(): string | null {
    return this.requester.serverName ?? null;
  }

  /** Before a new pick: the previous one joins `tried`. */
  rememberPicked(): void {
    const b = this.picked;
    if (b === null) return;
    this.picked = null;
    if (this.tried.length === 0) this.tried = [b];
    else (this.tried as Backend[]).push(b);
  }

  recordFailure(f: DialFailure): void {
    if (this.failures.length === 0) this.failures = [f];
    else (this.failures as DialFailure[]).push(f);
  }

  /** The requester is gone: stop dialling, free the slot and the queue place now. */
  cancel(): void {
    if (!this.done) this.owner.cancel(this);
  }

  /** The socket handed over was a warm one that died before carrying a byte: dial again, fresh. */
  redialFresh(): void {
    this.owner.redial(this);
  }
}
