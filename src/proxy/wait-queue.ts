import type { Clock } from '../clock.js';
import { type LbError, LimitError } from '../errors.js';
import type { DialAttempt } from './dial-attempt.js';

/** What the queue does with an attempt: dial it again (a slot may be free), or give up on it. */
export interface QueueDialer {
  run(a: DialAttempt): void;
  fail(a: DialAttempt, err: LbError): void;
}

/** How often waiting attempts retry: slots also free by max_rate refills, which no event announces. */
const POLL_MS = 25;

/**
 * Dial attempts waiting for a backend slot when every candidate is at its
 * max_connections or max_rate: FIFO, at most `size` of them, none longer than
 * `timeoutMs`. Slots free when sessions end (`serve` is called then) and as
 * max_rate tokens refill (a timer polls while anyone waits). An attempt whose
 * requester leaves is removed at once, so it never holds a place.
 */
export class WaitQueue {
  private waiting: DialAttempt[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly service: string,
    private readonly dialer: QueueDialer,
    private readonly clock: Clock,
    /** Bumped once per attempt that had to wait (read by metrics). */
    private readonly counters: { queued: number },
    private size: number,
    private timeoutMs: number,
  ) {}

  /** queue_size / queue_timeout from a reload; those already waiting keep their place. */
  configure(size: number, timeoutMs: number): void {
    this.size = size;
    this.timeoutMs = timeoutMs;
  }

  get length(): number {
    return this.waiting.length;
  }

  /** Every backend is at its cap for `a`: it waits, at the back (or at the head, if it was already first). */
  offer(a: DialAttempt): void {
    if (a.queuedAt === 0) {
      if (this.waiting.length >= this.size) {
        this.dialer.fail(a, new LimitError(this.service, 'queue-full'));
        return;
      }
      this.counters.queued++;
      a.queuedAt = this.clock.now();
      this.waiting.push(a);
      a.requester.waiting?.(a);
    } else {
      // It was at the head and still found no slot: it keeps its place.
      this.waiting.unshift(a);
    }
    if (!this.timer) {
      this.timer = setInterval(() => this.serve(), POLL_MS);
      this.timer.unref();
    }
  }

  remove(a: DialAttempt): void {
    const i = this.waiting.indexOf(a);
    if (i >= 0) this.waiting.splice(i, 1);
    if (this.waiting.length === 0) this.stopTimer();
  }

  /** Hands freed slots to waiting attempts in arrival order; gives up on those past queue_timeout. */
  serve(): void {
    const now = this.clock.now();
    while (this.waiting.length > 0) {
      const a = this.waiting[0] as DialAttempt;
      this.waiting.shift();
      if (a.done) continue;
      if (now - a.queuedAt > this.timeoutMs) {
        this.dialer.fail(a, new LimitError(this.service, 'queue-timeout'));
        continue;
      }
      const before = this.waiting.length;
      this.dialer.run(a);
      // Back at the head: nothing is free yet; the rest wait behind it.
      if (this.waiting.length > before) break;
    }
    if (this.waiting.length === 0) this.stopTimer();
  }

  close(): void {
    this.stopTimer();
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
