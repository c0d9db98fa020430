import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Backend } from '../backend/backend.js';
import type { SlotLease } from '../backend/lease.js';
import type { PickContext } from '../balancer/strategy.js';
import { MAX_RETRY_DELAY_MS } from '../config/limits.js';
import { DialError, LbError, NoBackendError } from '../errors.js';
import type { DialFailure } from '../proxy/dial-attempt.js';
import type { BackendPools } from './backend-pools.js';
import type { HttpHost } from './host.js';
import type { HttpBackendStats } from './stats.js';
import { undici } from './undici.js';

type Handler = Dispatcher.DispatchHandlers;
type Abort = (err?: Error) => void;

/** Methods that mean the same sent twice (RFC 9110 9.2.2); `idempotent: true` adds any other. */
const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/** Nothing was written: any request may go to another backend. */
const UNSENT_RETRY = new Set([
  'LB_ERR_DIAL',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_DESTROYED',
  'UND_ERR_CONNECT_TIMEOUT',
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
]);

/**
 * Written, no answer yet, and the connection went (a reset, or the pool of a
 * backend just disabled): only an idempotent request may be sent again.
 */
const SENT_RETRY = new Set([
  'UND_ERR_SOCKET',
  'UND_ERR_DESTROYED',
  'ECONNRESET',
  'EPIPE',
  'ECONNABORTED',
]);

function codeOf(err: Error): string {
  return (err as { code?: string }).code ?? err.message;
}

/** A body undici can send again as it is (not a stream or an iterator, which the first attempt read). */
function replayable(body: unknown): boolean {
  return body == null || typeof body === 'string' || body instanceof Uint8Array;
}

/**
 * One try on one backend: undici's handler for its pool, passing what comes
 * back to the request's own handler. A try the request left (aborted while
 * queued, say) is stale, and nothing it hears goes further.
 */
class Attempt implements Handler {
  /** undici began writing the request (onConnect): it may have reached the backend. */
  sent = false;
  /** The first byte of an answer arrived. */
  answered = false;
  status = 0;
  ended = false;
  abort: Abort | null = null;

  readonly backend: Backend;

  constructor(
    private readonly req: BalancedRequest,
    /** The backend's slot, ended when this try ends. */
    readonly lease: SlotLease,
    readonly stats: HttpBackendStats,
    readonly startedAt: number,
  ) {
    this.backend = lease.backend;
  }

  onConnect(abort: Abort): void {
    this.sent = true;
    this.abort = abort;
    this.req.attemptSending(this, abort);
  }

  onResponseStarted(): void {
    this.answered = true;
  }

  onHeaders(status: number, headers: Buffer[], resume: () => void, text: string): boolean {
    this.answered = true;
    this.req.answeredBy(this);
    this.status = status;
    return this.req.outer.onHeaders?.(status, headers, resume, text) ?? true;
  }

  onData(chunk: Buffer): boolean {
    return this.req.outer.onData?.(chunk) ?? true;
  }

  onComplete(trailers: string[] | null): void {
    this.req.attemptDone(this, trailers);
  }

  onError(err: Error): void {
    this.req.attemptFailed(this, err);
  }

  onUpgrade(status: number, headers: Buffer[] | string[] | null, socket: Duplex): void {
    this.answered = true;
    this.status = status;
    this.req.attemptUpgraded(this, headers, socket);
  }

  onBodySent(size: number, total: number): void {
    this.req.outer.onBodySent?.(size, total);
  }
}

/**
 * One request through the balancer: the service's strategy picks a backend
 * (skipping ones already tried while another is left), its per-backend pool
 * carries the request, and a try that fails before any answer goes to
 * another backend after retry_delay, 2x, 4x… up to max_retries: always when
 * nothing was written (a failed connect), and after a reset only for an
 * idempotent request whose body can be sent again. A non-idempotent request
 * that was written is never sent twice. Each try holds one of its backend's
 * max_connections slots (and a max_rate token) while under way, and ends as
 * one success or one failure in that backend's statistics.
 */
export class BalancedRequest implements PickContext {
  clientIp: string;
  now = 0;
  readonly tried: Backend[] = [];
  private readonly failures: DialFailure[] = [];
  private current: Attempt | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private abortedBy: Error | null = null;
  private finished = false;
  private readonly idempotent: boolean;
  private readonly canReplay: boolean;

  constructor(
    private readonly host: HttpHost,
    private readonly pools: BackendPools,
    private readonly opts: Dispatcher.DispatchOptions,
    readonly outer: Handler,
    key: string,
  ) {
    this.clientIp = key;
    const method = String(opts.method).toUpperCase();
    this.idempotent = opts.idempotent ?? IDEMPOTENT_METHODS.has(method);
    this.canReplay = replayable(opts.body);
  }

  /** The caller's abort: works while picking, queued, backing off or under way. */
  private readonly abortAll = (err?: Error): void => {
    if (this.finished || this.abortedBy) return;
    this.abortedBy = err ?? new (undici().errors.RequestAbortedError)();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const a = this.current;
    // Under way: undici cuts it and says so through onError.
    if (a?.abort) {
      a.abort(this.abortedBy);
      return;
    }
    if (a) this.endAttempt(a, false);
    this.current = null;
    this.fail(this.abortedBy);
  };

  start(): void {
    try {
      this.outer.onConnect?.(this.abortAll);
    } catch (err) {
      this.abortAll(err as Error);
    }
    if (!this.abortedBy) this.next();
  }

  private next(): void {
    const h = this.host;
    if (this.pools.closed) {
      this.fail(new LbError('LB_ERR_STATE', `service ${h.cfg.name}: closed`));
      return;
    }
    const now = h.clock.now();
    this.now = now;
    const b = h.strategy.pick(this);
    if (!b) {
      const why =
        h.backends.candidates.length > 0 ? 'every backend is at its limit' : 'no backend available';
      this.fail(new NoBackendError(h.cfg.name, why));
      return;
    }
    this.tried.push(b);
    const lease = h.backends.reserve(b, now);
    if (b.halfOpen) h.backends.beginTrial(b);
    const stats = h.httpStats.for(b);
    stats.requests++;
    const a = new Attempt(this, lease, stats, now);
    this.current = a;
    this.pools.for(b).dispatch(this.opts, a);
  }

  /** Headers came: the try's time to them is a latency sample for a latency-aware strategy. */
  answeredBy(a: Attempt): void {
    const h = this.host;
    if (h.strategy.observe === undefined || a !== this.current) return;
    const now = h.clock.now();
    h.strategy.observe(a.backend, now - a.startedAt, now);
  }

  attemptSending(a: Attempt, abort: Abort): void {
    // Left while it waited for a connection: it must not be written now.
    if (a !== this.current) abort(this.abortedBy ?? new (undici().errors.RequestAbortedError)());
    else if (this.abortedBy) abort(this.abortedBy);
  }

  attemptDone(a: Attempt, trailers: string[] | null): void {
    if (a !== this.current) return;
    this.current = null;
    this.endAttempt(a, a.status < 500);
    this.finished = true;
    this.outer.onComplete?.(trailers);
  }

  attemptUpgraded(a: Attempt, headers: Buffer[] | string[] | null, socket: Duplex): void {
    if (a !== this.current) {
      socket.destroy();
      return;
    }
    this.current = null;
    this.endAttempt(a, true);
    this.finished = true;
    this.outer.onUpgrade?.(a.status, headers, socket);
  }

  attemptFailed(a: Attempt, err: Error): void {
    if (a !== this.current) return;
    this.current = null;
    this.endAttempt(a, false);
    if (this.abortedBy) {
      this.fail(this.abortedBy);
      return;
    }
    const code = codeOf(err);
    const again = a.sent
      ? !a.answered && this.idempotent && this.canReplay && SENT_RETRY.has(code)
      : UNSENT_RETRY.has(code);
    const cause = err instanceof DialError ? (err.attempts[0]?.cause ?? code) : code;
    this.failures.push({ backend: a.backend.address, cause });
    const { maxRetries, retryDelayMs, name } = this.host.cfg;
    if (!again || this.failures.length > maxRetries) {
      this.fail(err instanceof DialError ? new DialError(name, this.failures) : err);
      return;
    }
    this.host.httpStats.retries++;
    const delay = Math.min(retryDelayMs * 2 ** (this.failures.length - 1), MAX_RETRY_DELAY_MS);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.next();
    }, delay);
  }

  /** The try's verdict: statistics, its slot back, and (passive_http_5xx) the backend's health. */
  private endAttempt(a: Attempt, ok: boolean): void {
    if (a.ended) return;
    a.ended = true;
    const h = this.host;
    const b = a.backend;
    a.lease.end();
    h.backends.abandonTrial(b);
    a.stats.latency.observe((h.clock.now() - a.startedAt) / 1000);
    if (ok) a.stats.successes++;
    else a.stats.failures++;
    if (!h.cfg.passiveHttp5xx || a.status === 0) return;
    if (a.status >= 500) h.backends.recordHttpFailure(b, `http ${a.status}`);
    else h.backends.reportDialSuccess(b);
  }

  private fail(err: Error): void {
    if (this.finished) return;
    this.finished = true;
    this.outer.onError?.(err);
  }
}
