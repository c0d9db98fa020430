import { type Backend, isAvailable } from '../backend/backend.js';
import { type PickContext, type Strategy, wasTried } from '../balancer/strategy.js';
import type { StickOn } from '../config/stick.js';
import type { StickTable } from './stick-table.js';

/** What a sticky pick reads besides a plain one: the SNI name, for on = "sni". */
export interface StickyPickContext extends PickContext {
  readonly serverName?: string | null;
}

/**
 * Told of every entry made, renewed or moved (the Redis write-behind queue);
 * never waits. `moved`: this instance overrides the group's entry (its backend
 * was no candidate here); otherwise the group's first word stands.
 */
export type StickWrite = (key: string, address: string, moved: boolean) => void;

/**
 * Any strategy with a stick table in front: a key's first
 * connection is placed by the strategy and remembered; later ones go to the
 * remembered backend while it is a candidate (up, not draining or disabled,
 * in the candidate tier), available (under max_connections and max_rate) and
 * not already tried by this dial; otherwise the strategy picks again and the
 * entry moves. Other backends coming and going leave an entry alone, as the
 * lookup is by the stuck backend's address, not by a table position.
 * Behind routes the remembered backend must also be a candidate of the group
 * the dial's route chose; one outside it counts as no candidate (the entry
 * moves into the group), so a client never leaves its route's group.
 * A hit is a Map lookup, a list splice and the candidate check: no allocation.
 */
export class StickyStrategy implements Strategy {
  /** Candidates by address; rebuilt on update (a candidate change), never per pick. */
  private byAddress = new Map<string, Backend>();
  /** Told of each new or moved entry; null: the table is this process's own. */
  write: StickWrite | null = null;

  constructor(
    public inner: Strategy,
    readonly table: StickTable,
    public on: StickOn,
  ) {}

  update(candidates: readonly Backend[]): void {
    const m = new Map<string, Backend>();
    for (const b of candidates) m.set(b.address, b);
    this.byAddress = m;
    this.inner.update(candidates);
  }

  /** The inner strategy's answer (a route's group with no candidate): the dial fails at once. */
  emptyFor(ctx: StickyPickContext): boolean {
    return this.inner.emptyFor?.(ctx) ?? false;
  }

  observe(b: Backend, ms: number, now: number): void {
    this.inner.observe?.(b, ms, now);
  }

  /** The key this context is stuck by; '' when it has none (on = "sni" and no name was sent). */
  keyOf(ctx: StickyPickContext): string {
    return this.on === 'source' ? ctx.clientIp : (ctx.serverName ?? '');
  }

  pick(ctx: StickyPickContext): Backend | undefined {
    const key = this.keyOf(ctx);
    if (key === '') return this.inner.pick(ctx);
    const t = this.table;
    const e = t.get(key, ctx.now);
    if (e !== null) {
      // Behind routes, only the group the dial's route chose counts (balancer/routed.ts).
      const inner = this.inner;
      const b =
        inner.candidateAt !== undefined
          ? inner.candidateAt(ctx, e.address)
          : this.byAddress.get(e.address);
      if (b !== undefined && isAvailable(b, ctx.now) && !wasTried(ctx, b)) {
        t.counters.hits++;
        // Shared: Redis's copy expires `expire` after its write; renewed once a quarter of that passed.
        if (this.write !== null && ctx.now - e.syncedAt >= t.expireMs / 4) {
          e.syncedAt = ctx.now;
          this.write(key, e.address, false);
        }
        return b;
      }
    }
    const b = this.inner.pick(ctx);
    if (b === undefined) return undefined;
    if (e === null) t.counters.misses++;
    else t.counters.moves++;
    if (e === null || e.address !== b.address) {
      t.set(key, b.address, ctx.now);
      this.write?.(key, b.address, e !== null);
    }
    return b;
  }
}
