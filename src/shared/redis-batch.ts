import type { LinkClient } from './redis-connect.js';

type Result = [Error | null, unknown];
type Call = readonly [name: string, args: readonly (string | number)[]];
type Send = Record<string, (...args: (string | number)[]) => unknown>;

/**
 * A batch of one-key commands for the write-behind. On one Redis it goes as
 * one pipeline. On a Redis Cluster a pipeline must keep to one node, so each
 * command is sent alone and the client's auto-pipelining groups those of one
 * tick by node: the keys of a batch may fall in any slot.
 */
export class Batch {
  private readonly calls: Call[] = [];

  constructor(private readonly c: LinkClient) {}

  get length(): number {
    return this.calls.length;
  }

  del(key: string): void {
    this.calls.push(['del', [key]]);
  }
  stickset(key: string, address: string, ttlMs: number, moved: 0 | 1): void {
    this.calls.push(['stickset', [key, address, ttlMs, moved]]);
  }
  hincrby(key: string, field: string, by: number): void {
    this.calls.push(['hincrby', [key, field, by]]);
  }
  hset(key: string, ...fieldsAndValues: (string | number)[]): void {
    this.calls.push(['hset', [key, ...fieldsAndValues]]);
  }
  hdel(key: string, ...fields: string[]): void {
    this.calls.push(['hdel', [key, ...fields]]);
  }
  pexpire(key: string, ms: number): void {
    this.calls.push(['pexpire', [key, ms]]);
  }

  /** Each command's error or answer, in order; never rejects. */
  async exec(): Promise<Result[]> {
    const c = this.c;
    if (c.isCluster) {
      const send = c as unknown as Send;
      return Promise.all(
        this.calls.map(([name, args]) =>
          Promise.resolve()
            .then(() => (send[name] as Send[string]).apply(c, [...args]))
            .then(
              (v): Result => [null, v],
              (err: unknown): Result => [err as Error, null],
            ),
        ),
      );
    }
    const p = c.pipeline() as unknown as Send & { exec(): Promise<Result[] | null> };
    for (const [name, args] of this.calls) (p[name] as Send[string]).apply(p, [...args]);
    try {
      return (await p.exec()) ?? [];
    } catch (err) {
      return this.calls.map((): Result => [err as Error, null]);
    }
  }
}
