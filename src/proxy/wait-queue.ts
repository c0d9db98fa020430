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
  /** Arrival order; may hold attempts that left, skipped when they reach the head. */
  private order: DialAttempt[] = [];
  /** Who is waiting now: leaving is O(1), and the size check counts only these. */
  private readonly members = new Set<DialAttempt>();
  /** The attempt `serve` is retrying: if it finds no slot it goes back to the head. */
  private serving: DialAttempt | null = null;
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
    return this.members.size;
  }

  /** How long the longest-waiting attempt has waited so far, in ms (0: nobody waits). Read at scrape time. */
  longestWaitMs(now: number): number {
    let oldest = now;
    for (const a of this.members) if (a.queuedAt < oldest) oldest = a.queuedAt;
    return now - oldest;
  }

  /** Every backend is at its cap for `a`: it waits at the back (at the head if it was just first). */
  offer(a: DialAttempt): void {
    if (a === this.serving) {
      this.order.unshift(a);
      this.members.add(a);
      a.enter('queued');
    } else {
      if (this.members.size >= this.size) {
        this.dialer.fail(a, new LimitError(this.service, 'queue-full'));
        return;
      }
      // A retry that comes back (its dial failed) waits anew, but counts as queued once.
      if (a.queuedAt === 0) this.counters.queued++;
      a.queuedAt = this.clock.now();
      this.order.push(a);
      this.members.add(a);
      a.enter('queued');
      a.requester.waiting?.(a);
    }
    if (!this.timer) {
      this.timer = setInterval(() => this.serve(), POLL_MS);
      this.timer.unref();
    }
  }

  remove(a: DialAttempt): void {
    if (this.members.delete(a) && this.members.size === 0) this.empty();
  }

  /** Hands freed slots to waiting attempts in arrival order; gives up on those past queue_timeout. */
  serve(): void {
    const now = this.clock.now();
    while (this.order.length > 0) {
      const a = this.order.shift() as DialAttempt;
      if (!this.members.delete(a) || a.done) continue;
      if (now - a.queuedAt > this.timeoutMs) {
        this.dialer.fail(a, new LimitError(this.service, 'queue-timeout'));
        continue;
      }
      this.serving = a;
      this.dialer.run(a);
      this.serving = null;
      // Back at the head: nothing is free yet; the rest wait behind it.
      if (this.members.has(a)) break;
    }
    if (this.members.size === 0) this.empty();
  }

  private empty(): void {
    this.order = [];
    this.stopTimer();
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
