import type { Clock } from '../clock.js';
import type { RedisLink } from './redis-link.js';
import type { StickTable } from './stick-table.js';

/** Entries sent per pipeline when the whole table is resent (Redis came back). */
const RESYNC_CHUNK = 1_000;

/**
 * One service's stick table in Redis (issue 26): entries are written behind,
 * coalesced by key and sent as one pipeline every flush_interval (never on
 * the accept path); a key missing here is looked up there (the gate bounds
 * that wait). Each Redis key expires after the table's `expire`, refreshed
 * when a hit is a quarter of that old. When Redis comes back, the whole
 * local table is written again, so what was decided meanwhile is shared.
 */
export class SharedStick {
  /** key -> backend address to write, or null to delete; coalesced until the next flush. */
  private readonly queue = new Map<string, string | null>();
  private clearAll = false;
  private timer: NodeJS.Timeout | null = null;
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

  write(key: string, address: string): void {
    this.queue.set(key, address);
    this.schedule();
  }

  /** An operator removed `key` (null: every key) through the admin API: removed in Redis too. */
  forget(key: string | null): void {
    if (key === null) {
      this.queue.clear();
      this.clearAll = true;
    } else this.queue.set(key, null);
    this.schedule();
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

  private schedule(): void {
    if (this.timer !== null || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.flush();
    }, this.link.cfg.flushMs);
    this.timer.unref();
  }

  /** Sends the queue as one pipeline; what fails is dropped (the resync on Redis's return sends it all). */
  async flush(): Promise<void> {
    const c = this.link.client;
    if (!c || !this.link.up) {
      this.queue.clear();
      this.clearAll = false;
      return;
    }
    const p = c.pipeline();
    if (this.clearAll) {
      this.clearAll = false;
      await this.deleteAll();
    }
    const ttl = this.table.expireMs;
    for (const [key, address] of this.queue) {
      if (address === null) p.del(this.redisKey(key));
      else p.set(this.redisKey(key), address, 'PX', ttl);
    }
    this.queue.clear();
    if (p.length === 0) return;
    try {
      await p.exec();
    } catch (err) {
      this.link.failed(err);
    }
  }

  private async deleteAll(): Promise<void> {
    const c = this.link.client;
    if (!c) return;
    try {
      let cursor = '0';
      do {
        const [next, keys] = await c.scan(cursor, 'MATCH', `${this.redisKey('')}*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await c.del(...keys);
      } while (cursor !== '0');
    } catch (err) {
      this.link.failed(err);
    }
  }

  /** Redis is back: every live local entry is written again, with the idle time it has left. */
  async resync(): Promise<void> {
    const c = this.link.client;
    if (!c || this.closed) return;
    const t = this.table;
    const now = this.clock.now();
    let p = c.pipeline();
    try {
      for (const e of t.entries()) {
        const left = e.usedAt + t.expireMs - now;
        if (left <= 0) continue;
        p.set(this.redisKey(e.key), e.address, 'PX', Math.ceil(left));
        if (p.length >= RESYNC_CHUNK) {
          await p.exec();
          p = c.pipeline();
        }
      }
      if (p.length > 0) await p.exec();
    } catch (err) {
      this.link.failed(err);
    }
  }

  close(): void {
    this.closed = true;
    this.unsubscribe();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
