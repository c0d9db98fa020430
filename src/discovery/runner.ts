import type { Clock } from '../clock.js';
import type { DiscoveryConfig } from '../config/discovery.js';
import type { BackendConfig } from '../config/schema.js';
import { LogThrottle } from '../log-throttle.js';
import type { Logger } from '../logger.js';
import { MAX_DISCOVERED } from './entries.js';
import { type Answer, DiscoveryError, type Source } from './source.js';

/** A failure is logged at most this often (with the number held back). */
const WARN_EVERY_MS = 30_000;
/** A file watch fires several events per write: they are gathered for this long. */
const DEBOUNCE_MS = 50;

/** What /api/services and /metrics show of a service's discovery. */
export interface DiscoveryStatus {
  kind: DiscoveryConfig['kind'];
  target: string;
  /** Backends in the last good answer (after taking out static ones: see `backends` of the service). */
  found: number;
  failures: number;
  /** Wall-clock ms of the last good answer; null before the first. */
  lastSuccessAt: number | null;
  lastError: string | null;
  lastErrorAt: number | null;
  /** Lookups that failed in a row, up to now. */
  failing: number;
}

/**
 * Runs one source: the first lookup at start, then the next one after the
 * record's TTL (clamped by min_ttl / max_ttl) and never later than
 * `interval`, at once after a file change or a Consul index change. A failed
 * or empty answer (unless allow_empty) changes nothing: the last good list
 * stays, the failure is counted and a warning logged, rate-limited.
 */
export class DiscoveryRunner {
  readonly status: DiscoveryStatus;
  private timer: NodeJS.Timeout | null = null;
  private abort: AbortController | null = null;
  private running = false;
  private stopped = false;
  /** A change came in while a lookup ran: look again when it ends. */
  private again = false;
  private unwatch: (() => void) | null = null;
  private readonly throttle: LogThrottle;

  constructor(
    private readonly cfg: DiscoveryConfig,
    private readonly source: Source,
    private readonly onList: (list: readonly BackendConfig[]) => void,
    private readonly log: Logger,
    clock: Clock,
  ) {
    this.throttle = new LogThrottle(WARN_EVERY_MS, clock);
    this.status = {
      kind: cfg.kind,
      target: source.target,
      found: 0,
      failures: 0,
      lastSuccessAt: null,
      lastError: null,
      lastErrorAt: null,
      failing: 0,
    };
  }

  start(): void {
    if (this.stopped || this.timer || this.running) return;
    this.unwatch = this.source.watch?.(() => this.changed()) ?? null;
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.abort?.abort();
    this.unwatch?.();
    this.unwatch = null;
  }

  /** The source says it changed: look again soon, gathering a burst of events into one lookup. */
  private changed(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.schedule(DEBOUNCE_MS);
  }

  private schedule(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.run();
    }, ms);
    this.timer.unref();
  }

  private async run(): Promise<void> {
    this.running = true;
    this.again = false;
    const ac = new AbortController();
    this.abort = ac;
    const deadline = setTimeout(
      () => ac.abort(new Error(`timed out after ${this.source.deadlineMs()}ms`)),
      this.source.deadlineMs(),
    );
    let next: number;
    try {
      const answer = await this.source.lookup(ac.signal);
      if (ac.signal.aborted) throw ac.signal.reason;
      next = this.succeeded(answer);
    } catch (err) {
      next = this.failed(ac.signal.aborted && !this.stopped ? ac.signal.reason : err);
    } finally {
      clearTimeout(deadline);
      this.running = false;
      this.abort = null;
    }
    if (this.stopped) return;
    this.schedule(this.again ? DEBOUNCE_MS : next);
  }

  /** Applies a good answer; returns when to look next. */
  private succeeded(a: Answer): number {
    if (this.stopped) return 0;
    if (a.backends !== null) {
      if (a.backends.length === 0 && !this.cfg.allowEmpty)
        return this.failed(new Error('empty answer (allow_empty = false): no backend found'));
      // Every kind's answer passes here: DNS and SRV (whose targets multiply) as well as files and URLs.
      if (a.backends.length > MAX_DISCOVERED)
        return this.failed(
          new DiscoveryError(`${a.backends.length} backends, over the limit of ${MAX_DISCOVERED}`),
        );
      this.onList(a.backends);
      this.status.found = a.backends.length;
    }
    if (this.status.failing > 0)
      this.log.info(
        { discovery: this.cfg.kind, target: this.source.target, after: this.status.failing },
        'discovery answers again',
      );
    this.status.failing = 0;
    this.status.lastSuccessAt = Date.now();
    if (a.again) return 0;
    const { intervalMs, minTtlMs, maxTtlMs } = this.cfg;
    if (a.ttlMs === null) return intervalMs;
    return Math.min(intervalMs, Math.max(minTtlMs, Math.min(a.ttlMs, maxTtlMs)));
  }

  /** Keeps the last list; counts, warns (rate-limited); returns when to try again. */
  private failed(err: unknown): number {
    if (this.stopped) return 0;
    const msg = err instanceof Error ? err.message : String(err);
    this.status.failures++;
    this.status.failing++;
    this.status.lastError = msg;
    this.status.lastErrorAt = Date.now();
    this.source.reset?.();
    const held = this.throttle.pass();
    if (held >= 0)
      this.log.warn(
        {
          discovery: this.cfg.kind,
          target: this.source.target,
          error: msg,
          keeping: this.status.found,
          ...(held > 0 ? { heldBack: held } : {}),
        },
        'discovery failed; keeping the last good list',
      );
    return Math.min(this.cfg.intervalMs, Math.max(this.cfg.minTtlMs, 1000));
  }
}
