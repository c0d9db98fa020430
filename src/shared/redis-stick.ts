import type { Clock } from '../clock.js';
import { FlushTimer } from './flush-timer.js';
import { Batch } from './redis-batch.js';
import type { RedisLink } from './redis-link.js';
import type { StickTable } from './stick-table.js';

/** Entries sent per pipeline when the whole table is resent (Redis came back). */
const RESYNC_CHUNK = 1_000;

/**
 * One service's stick table in Redis: entries are written behind,
 * coalesced by key and sent as one pipeline every flush_interval (never on
 * the accept path); a key missing here is looked up there (the gate bounds
 * that wait). Each Redis key expires after the table's `expire`, refreshed
 * when a hit is a quarter of that old. When Redis comes back, the whole
 * local table is written again, so what was decided meanwhile is shared.
 */
export class SharedStick {
  /** key -> backend address to write, or null to delete; coalesced until the next flush. */
  private readonly queue = new Map<string, string | null>();
  /** Keys in `queue` this instance moved: they override the group's entry. */
  private readonly moved = new Set<string>();
  private clearAll = false;
  private readonly flusher = new FlushTimer(
    () => this.link.cfg.flushMs,
    () => this.flush(),
  );
  private readonly lookups = new Map<string, Promise<string | null>>();
  private closed = false;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly link: RedisLink,
    private readonly service: string,
    private table: StickTable,
    /** The table's clock (usedAt is in its ms). */
    private readonly clock: Clock,
  ) {
    this.unsubscribe = link.whenUp(() => void this.resync());
  }

  retarget(table: StickTable): void {
    this.table = table;
  }

  private redisKey(key: string): string {
    return this.link.key('stick', this.service, key);
  }

  write(key: string, address: string, moved: boolean): void {
    this.queue.set(key, address);
    if (moved) this.moved.add(key);
    else this.moved.delete(key);
    this.flusher.schedule();
  }

  /** An operator removed `key` (null: every key) through the admin API: removed in Redis too. */
  forget(key: string | null): void {
    if (key === null) {
      this.queue.clear();
      this.moved.clear();
      this.clearAll = true;
    } else this.queue.set(key, null);
    this.flusher.schedule();
  }

  /** The backend address Redis holds for `key`, or null (none, or Redis failed): one GET per key at a time. */
  lookup(key: string): Promise<string | null> {
    const c = this.link.client;
    if (!c || !this.link.up) return Promise.resolve(null);
    let p = this.lookups.get(key);
    if (p) return p;
    p = c.get(this.redisKey(key)).then(
      (v) => {
        this.lookups.delete(key);
        return v;
      },
      (err: unknown) => {
        this.lookups.delete(key);
        this.link.failed(err);
        return null;
      },
    );
    this.lookups.set(key, p);
    return p;
  }

  /**
   * Sends the queue as one pipeline; what fails is dropped (the resync on
   * Redis's return sends it all). Where the group had decided a key first,
   * this instance adopts the group's backend for that key's next connection.
   */
  async flush(): Promise<void> {
    const c = this.link.client;
    if (!c || !this.link.up) {
      this.queue.clear();
      this.moved.clear();
      this.clearAll = false;
      return;
    }
    if (this.clearAll) {
      this.clearAll = false;
      await this.deleteAll();
    }
    const p = new Batch(c);
    const sent: ([string, string] | null)[] = [];
    const ttl = this.table.expireMs;
    for (const [key, address] of this.queue) {
      if (address === null) {
        p.del(this.redisKey(key));
        sent.push(null);
      } else {
        p.stickset(this.redisKey(key), address, ttl, this.moved.has(key) ? 1 : 0);
        sent.push([key, address]);
      }
    }
    this.queue.clear();
    this.moved.clear();
    if (p.length === 0) return;
    await this.send(p, sent);
  }

  /** Runs a pipeline of stickset (and del) calls; adopts the group's answers. */
  private async send(p: Batch, sent: readonly ([string, string] | null)[]): Promise<void> {
    try {
      const results = await p.exec();
      for (let i = 0; i < results.length; i++) {
        const [err, value] = results[i] as [Error | null, unknown];
        if (err) {
          this.link.failed(err);
          continue;
        }
        const s = sent[i]; // null: a del
        if (!s || typeof value !== 'string' || value === s[1]) continue;
        const e = this.table.peek(s[0]);
        // Unless it moved here meanwhile: the group's backend from the next connection on.
        if (e !== null && e.address === s[1]) {
          e.address = value;
          this.table.counters.adopted++;
        }
      }
    } catch (err) {
      this.link.failed(err);
    }
  }

  /** Every key of this service's table, on each node (a Redis Cluster's keys are spread over its masters). */
  private async deleteAll(): Promise<void> {
    const c = this.link.client;
    if (!c) return;
    try {
      for (const node of this.link.scanTargets()) {
        let cursor = '0';
        do {
          const [next, keys] = await node.scan(
            cursor,
            'MATCH',
            `${this.redisKey('')}*`,
            'COUNT',
            1000,
          );
          cursor = next;
          // One DEL a key: in a Cluster, the keys of one node may be in different slots.
          const p = new Batch(c);
          for (const k of keys) p.del(k);
          for (const [err] of await p.exec()) if (err) this.link.failed(err);
        } while (cursor !== '0');
      }
    } catch (err) {
      this.link.failed(err);
    }
  }

  /**
   * Redis is back: every live local entry is written again, with the idle
   * time it has left; where another instance got there first, its word stands
   * and is adopted here.
   */
  async resync(): Promise<void> {
    const c = this.link.client;
    if (!c || this.closed) return;
    const t = this.table;
    const now = this.clock.now();
    let p = new Batch(c);
    let sent: [string, string][] = [];
    for (const e of t.entries()) {
      const left = e.usedAt + t.expireMs - now;
      if (left <= 0) continue;
      p.stickset(this.redisKey(e.key), e.address, Math.ceil(left), 0);
      sent.push([e.key, e.address]);
      if (sent.length >= RESYNC_CHUNK) {
        await this.send(p, sent);
        p = new Batch(c);
        sent = [];
      }
    }
    if (sent.length > 0) await this.send(p, sent);
  }

  close(): void {
    this.closed = true;
    this.unsubscribe();
    this.flusher.stop();
  }
}
