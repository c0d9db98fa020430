import type { Socket } from 'node:net';
import type { Clock } from '../clock.js';
import type { TrafficConfig } from '../config/traffic.js';
import { TokenBucket } from './token-bucket.js';

/** What a shaper needs of its session (proxy/session.ts's Session has it). */
export interface ShapedSession {
  readonly client: Socket;
  readonly backend: Socket | null;
  readonly clientIp: string;
}

type Rates = Pick<
  TrafficConfig,
  'uploadRate' | 'downloadRate' | 'uploadRatePerSource' | 'downloadRatePerSource'
>;

/** One client address's shared buckets, held while any of its sessions is open. */
interface SourceBuckets {
  readonly up: TokenBucket;
  readonly down: TokenBucket;
  refs: number;
}

/**
 * One limited session's buckets and which of its sides is paused for them.
 * Only a session with a limit has one: one without carries null, and its data
 * listeners are the plain ones (see Session.attach), so it pays nothing.
 */
export class Shaper {
  /** The client is not read until the upload buckets are out of debt. */
  upPaused = false;
  /** The backend is not read until the download buckets are out of debt. */
  downPaused = false;

  constructor(
    private readonly bw: Bandwidth,
    readonly s: ShapedSession,
    private readonly upOwn: TokenBucket | null,
    private readonly downOwn: TokenBucket | null,
    readonly source: SourceBuckets | null,
  ) {}

  /** `n` bytes went client → backend: true when the client must pause (the resume is scheduled). */
  up(n: number): boolean {
    const r = this.bw.rates;
    const now = this.bw.clock.now();
    let ok = true;
    if (this.upOwn !== null && r.uploadRate > 0) ok = this.upOwn.take(n, r.uploadRate, now);
    if (this.source !== null && r.uploadRatePerSource > 0)
      ok = this.source.up.take(n, r.uploadRatePerSource, now) && ok;
    if (ok) return false;
    this.upPaused = true;
    this.bw.pauses.upload++;
    this.bw.paused(this, this.upDebt(r));
    return true;
  }

  /** `n` bytes went backend → client: true when the backend must pause. */
  down(n: number): boolean {
    const r = this.bw.rates;
    const now = this.bw.clock.now();
    let ok = true;
    if (this.downOwn !== null && r.downloadRate > 0) ok = this.downOwn.take(n, r.downloadRate, now);
    if (this.source !== null && r.downloadRatePerSource > 0)
      ok = this.source.down.take(n, r.downloadRatePerSource, now) && ok;
    if (ok) return false;
    this.downPaused = true;
    this.bw.pauses.download++;
    this.bw.paused(this, this.downDebt(r));
    return true;
  }

  /**
   * The timer's visit: a paused side whose buckets are out of debt is read
   * again, unless its writer is still full (then the writer's 'drain' resumes
   * it, see session-listeners.ts). Returns ms until the next look (0: nothing paused).
   */
  wake(now: number): number {
    const r = this.bw.rates;
    let next = 0;
    if (this.upPaused) {
      const wait = this.refill(
        this.upOwn,
        r.uploadRate,
        this.source?.up,
        r.uploadRatePerSource,
        now,
      );
      if (wait === 0) {
        this.upPaused = false;
        if (!this.s.backend?.writableNeedDrain) this.s.client.resume();
      } else next = wait;
    }
    if (this.downPaused) {
      const wait = this.refill(
        this.downOwn,
        r.downloadRate,
        this.source?.down,
        r.downloadRatePerSource,
        now,
      );
      if (wait === 0) {
        this.downPaused = false;
        if (!this.s.client.writableNeedDrain) this.s.backend?.resume();
      } else next = next === 0 ? wait : Math.min(next, wait);
    }
    return next;
  }

  private refill(
    own: TokenBucket | null,
    rate: number,
    src: TokenBucket | undefined,
    srcRate: number,
    now: number,
  ): number {
    let wait = 0;
    if (own !== null && rate > 0 && !own.take(0, rate, now)) wait = own.debtMs(rate);
    if (src !== undefined && srcRate > 0 && !src.take(0, srcRate, now))
      wait = Math.max(wait, src.debtMs(srcRate));
    return wait;
  }

  private upDebt(r: Rates): number {
    let ms = 0;
    if (this.upOwn !== null && r.uploadRate > 0) ms = this.upOwn.debtMs(r.uploadRate);
    if (this.source !== null && r.uploadRatePerSource > 0)
      ms = Math.max(ms, this.source.up.debtMs(r.uploadRatePerSource));
    return ms;
  }

  private downDebt(r: Rates): number {
    let ms = 0;
    if (this.downOwn !== null && r.downloadRate > 0) ms = this.downOwn.debtMs(r.downloadRate);
    if (this.source !== null && r.downloadRatePerSource > 0)
      ms = Math.max(ms, this.source.down.debtMs(r.downloadRatePerSource));
    return ms;
  }
}

/** The timer never fires sooner than this after it is armed: many short debts share one visit. */
const MIN_WAIT_MS = 2;

/**
 * A service's bandwidth limits (upload_rate, download_rate and their
 * per-source forms): a shaper for each limited session, the buckets each
 * client address shares, and one timer that resumes paused sides when their
 * debt is paid. The source map holds an entry only while a limited session of
 * that address is open, so it is bounded by max_connections and emptied as
 * they end. Rates are read from the config at each chunk: a reload's new rates
 * apply to the open limited sessions at once; whether a session is limited at
 * all is settled when it starts.
 */
export class Bandwidth {
  private readonly sources = new Map<string, SourceBuckets>();
  private readonly waiting = new Set<Shaper>();
  /** Times a side stopped being read for its limit, by direction (read by /metrics). */
  readonly pauses = { upload: 0, download: 0 };
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Number.POSITIVE_INFINITY;

  constructor(
    private readonly cfg: () => Rates,
    readonly clock: Clock,
  ) {}

  get rates(): Rates {
    return this.cfg();
  }

  /** A shaper for a session starting now, or null when no limit applies (the common case: no allocation). */
  shaperFor(s: ShapedSession): Shaper | null {
    const r = this.cfg();
    const own = r.uploadRate > 0 || r.downloadRate > 0;
    const bySource = r.uploadRatePerSource > 0 || r.downloadRatePerSource > 0;
    if (!own && !bySource) return null;
    const now = this.clock.now();
    let src: SourceBuckets | null = null;
    if (bySource) {
      const ip = s.clientIp;
      src = this.sources.get(ip) ?? null;
      if (src === null) {
        src = {
          up: new TokenBucket(r.uploadRatePerSource, now),
          down: new TokenBucket(r.downloadRatePerSource, now),
          refs: 0,
        };
        this.sources.set(ip, src);
      }
      src.refs++;
    }
    return new Shaper(
      this,
      s,
      r.uploadRate > 0 ? new TokenBucket(r.uploadRate, now) : null,
      r.downloadRate > 0 ? new TokenBucket(r.downloadRate, now) : null,
      src,
    );
  }

  /** The session of `sh` ended: it waits no more, and its source's buckets go with its last session. */
  release(sh: Shaper, ip: string): void {
    this.waiting.delete(sh);
    const src = sh.source;
    if (src !== null && --src.refs === 0) this.sources.delete(ip);
    if (this.waiting.size === 0) this.stop();
  }

  /** Client addresses holding shared buckets now (for tests and the admin API). */
  get sourceCount(): number {
    return this.sources.size;
  }

  /** Sessions with a side paused for its limit now. */
  get pausedCount(): number {
    return this.waiting.size;
  }

  /** A side of `sh` paused, in debt for `ms`. */
  paused(sh: Shaper, ms: number): void {
    this.waiting.add(sh);
    const at = this.clock.now() + Math.max(MIN_WAIT_MS, ms);
    if (at < this.timerAt) this.arm(at);
  }

  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = Number.POSITIVE_INFINITY;
  }

  private arm(at: number): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.tick(), Math.max(1, at - this.clock.now()));
    this.timer.unref();
  }

  private tick(): void {
    this.timer = null;
    this.timerAt = Number.POSITIVE_INFINITY;
    const now = this.clock.now();
    let next = Number.POSITIVE_INFINITY;
    for (const sh of this.waiting) {
      const wait = sh.wake(now);
      if (wait === 0) this.waiting.delete(sh);
      else next = Math.min(next, now + Math.max(MIN_WAIT_MS, wait));
    }
    if (next !== Number.POSITIVE_INFINITY) this.arm(next);
  }
}
