/**
 * A stick table: key (a client address or an SNI name) -> the backend address
 * it was given, least recently used first out, forgotten after `expireMs`
 * idle. A Map for O(1) lookup plus an intrusive doubly linked list through
 * the entries for the LRU order, so a hit (get + move to the front) is a few
 * pointer writes and allocates nothing; only a new key allocates its entry.
 * Expiry is checked on read and swept from the LRU end (oldest use first),
 * so a sweep costs what it removes.
 */
export interface StickEntry {
  readonly key: string;
  /** The backend's address ("host:port"), which survives a reload that keeps it. */
  address: string;
  /** Clock ms of the last use (or of the write); expires at usedAt + expireMs. */
  usedAt: number;
  /** Clock ms when it was last sent to Redis (shared tables refresh the TTL there on use). */
  syncedAt: number;
  prev: StickEntry | null;
  next: StickEntry | null;
}

export interface StickCounters {
  /** A key found, its backend a candidate: the client went there. */
  hits: number;
  /** No entry: the strategy placed the client. */
  misses: number;
  /** An entry whose backend was no candidate: the strategy placed it again and the entry moved. */
  moves: number;
  /** Entries pushed out at `size`. */
  evictions: number;
  /** Entries forgotten after `expire` idle. */
  expired: number;
  /** Shared: entries another instance had decided first, taken over from Redis. */
  adopted: number;
}

export class StickTable {
  private readonly map = new Map<string, StickEntry>();
  /** Most recently used. */
  private head: StickEntry | null = null;
  /** Least recently used: the next to go. */
  private tail: StickEntry | null = null;
  readonly counters: StickCounters = {
    hits: 0,
    misses: 0,
    moves: 0,
    evictions: 0,
    expired: 0,
    adopted: 0,
  };

  constructor(
    public expireMs: number,
    public size: number,
  ) {}

  get length(): number {
    return this.map.size;
  }

  /** The live entry for `key`, made the most recent; null when there is none or it expired. */
  get(key: string, now: number): StickEntry | null {
    const e = this.map.get(key);
    if (e === undefined) return null;
    if (now - e.usedAt >= this.expireMs) {
      this.unlink(e);
      this.map.delete(key);
      this.counters.expired++;
      return null;
    }
    e.usedAt = now;
    this.toFront(e);
    return e;
  }

  /** The entry without touching its age or place (admin API, Redis write-behind). */
  peek(key: string): StickEntry | null {
    return this.map.get(key) ?? null;
  }

  /** Sets `key` to `address` as used at `now`; evicts the least recent entry at `size`. */
  set(key: string, address: string, now: number): StickEntry {
    let e = this.map.get(key);
    if (e !== undefined) {
      e.address = address;
      e.usedAt = now;
      e.syncedAt = now;
      this.toFront(e);
      return e;
    }
    while (this.map.size >= this.size && this.tail !== null) {
      const old = this.tail;
      this.unlink(old);
      this.map.delete(old.key);
      this.counters.evictions++;
    }
    e = { key, address, usedAt: now, syncedAt: now, prev: null, next: null };
    this.map.set(key, e);
    this.toFront(e);
    return e;
  }

  delete(key: string): boolean {
    const e = this.map.get(key);
    if (e === undefined) return false;
    this.unlink(e);
    this.map.delete(key);
    return true;
  }

  clear(): number {
    const n = this.map.size;
    this.map.clear();
    this.head = null;
    this.tail = null;
    return n;
  }

  /** Forgets every entry idle for expireMs by `now`; returns how many. */
  sweep(now: number): number {
    let n = 0;
    while (this.tail !== null && now - this.tail.usedAt >= this.expireMs) {
      const e = this.tail;
      this.unlink(e);
      this.map.delete(e.key);
      n++;
    }
    this.counters.expired += n;
    return n;
  }

  /** A new size: the least recent entries over it go now. */
  resize(size: number, expireMs: number): void {
    this.size = size;
    this.expireMs = expireMs;
    while (this.map.size > size && this.tail !== null) {
      const old = this.tail;
      this.unlink(old);
      this.map.delete(old.key);
      this.counters.evictions++;
    }
  }

  /** Most recent first (admin API; never on the accept path). */
  *entries(): IterableIterator<StickEntry> {
    for (let e = this.head; e !== null; e = e.next) yield e;
  }

  private toFront(e: StickEntry): void {
    if (this.head === e) return;
    this.unlink(e);
    e.next = this.head;
    if (this.head !== null) this.head.prev = e;
    this.head = e;
    if (this.tail === null) this.tail = e;
  }

  private unlink(e: StickEntry): void {
    if (e.prev !== null) e.prev.next = e.next;
    else if (this.head === e) this.head = e.next;
    if (e.next !== null) e.next.prev = e.prev;
    else if (this.tail === e) this.tail = e.prev;
    e.prev = null;
    e.next = null;
  }
}
