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

type RateKey = keyof Rates;

/**
 * One direction of a limited session: its own bucket, its source's, and
 * whether its reading side is paused for them. Upload and download are two of
 * these, told apart only by which rates they read.
 */
class ShapedSide {
  paused = false;

  constructor(
    private readonly own: TokenBucket | null,
    private readonly shared: TokenBucket | null,
    private readonly rate: RateKey,
    private readonly sharedRate: RateKey,
  ) {}

  /** Takes `n` bytes from each bucket whose rate is on; false while any is in debt. */
  take(r: Rates, n: number, now: number): boolean {
    let ok = true;
    if (this.own !== null && r[this.rate] > 0) ok = this.own.take(n, r[this.rate], now);
    if (this.shared !== null && r[this.sharedRate] > 0)
      ok = this.shared.take(n, r[this.sharedRate], now) && ok;
    return ok;
  }

  /** Milliseconds until every bucket is out of debt (0: none is in debt). */
  debtMs(r: Rates): number {
    let ms = 0;
    if (this.own !== null && r[this.rate] > 0) ms = this.own.debtMs(r[this.rate]);
    if (this.shared !== null && r[this.sharedRate] > 0)
      ms = Math.max(ms, this.shared.debtMs(r[this.sharedRate]));
    return ms;
  }
}

/**
 * One limited session's two directions. Only a session with a limit has one:
 * one without carries null, and its data listeners are the plain ones (see
 * Session.attach), so it pays nothing.
 */
export class Shaper {
  private readonly upSide: ShapedSide;
  private readonly downSide: ShapedSide;

  constructor(
    private readonly bw: Bandwidth,
    readonly s: ShapedSession,
    upOwn: TokenBucket | null,
    downOwn: TokenBucket | null,
    readonly source: SourceBuckets | null,
  ) {
    this.upSide = new ShapedSide(upOwn, source?.up ?? null, 'uploadRate', 'uploadRatePerSource');
    this.downSide = new ShapedSide(
      downOwn,
      source?.down ?? null,
      'downloadRate',
      'downloadRatePerSource',
    );
  }

  /** The client is not read until the upload buckets are out of debt. */
  get upPaused(): boolean {
    return this.upSide.paused;
  }

  /** The backend is not read until the download buckets are out of debt. */
  get downPaused(): boolean {
    return this.downSide.paused;
  }

  /** `n` bytes went client → backend: true when the client must pause (the resume is scheduled). */
  up(n: number): boolean {
    return this.spent(this.upSide, n, 'upload');
  }

  /** `n` bytes went backend → client: true when the backend must pause. */
  down(n: number): boolean {
    return this.spent(this.downSide, n, 'download');
  }

  /**
   * The timer's visit: a paused side whose buckets are out of debt is read
   * again, unless its writer is still full (then the writer's 'drain' resumes
   * it, see session-listeners.ts). Returns ms until the next look (0: nothing paused).
   */
  wake(now: number): number {
    const r = this.bw.rates;
    const { client, backend } = this.s;
    const up = this.upSide.paused ? this.woken(this.upSide, r, now, client, backend) : 0;
    const down = this.downSide.paused ? this.woken(this.downSide, r, now, backend, client) : 0;
    return up === 0 ? down : down === 0 ? up : Math.min(up, down);
  }

  private spent(side: ShapedSide, n: number, direction: 'upload' | 'download'): boolean {
    const r = this.bw.rates;
    if (side.take(r, n, this.bw.clock.now())) return false;
    side.paused = true;
    this.bw.pauses[direction]++;
    this.bw.paused(this, side.debtMs(r));
    return true;
  }

  /** A paused side's buckets refilled to `now`: it is read again when none is in debt. Returns the wait left. */
  private woken(
    side: ShapedSide,
    r: Rates,
    now: number,
    reader: Socket | null,
    writer: Socket | null,
  ): number {
    const wait = side.take(r, 0, now) ? 0 : side.debtMs(r);
    if (wait === 0) {
      side.paused = false;
      if (!writer?.writableNeedDrain) reader?.resume();
    }
    return wait;
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
