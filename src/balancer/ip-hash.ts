import { createHash } from 'node:crypto';
import type { Backend } from '../backend/backend.js';
import { eligible, mustSkipTried, type PickContext, type Strategy } from './strategy.js';

/** Maglev lookup-table size: a prime, so every skip step visits every slot. */
export const MAGLEV_TABLE_SIZE = 65537;

/** A backend's Maglev permutation: slot offset + j * skip (mod the table size) is its j-th preference. */
interface Permutation {
  readonly offset: number;
  readonly skip: number;
}

const byAddress = (a: Backend, b: Backend): number =>
  a.address < b.address ? -1 : a.address > b.address ? 1 : 0;

/**
 * ip-hash through a Maglev lookup table (Eisenbud et al., "Maglev: A Fast and
 * Reliable Software Network Load Balancer", NSDI 2016, section 3.4).
 *
 * Each backend fills table slots in the order of its own permutation
 * (offset + j * skip, from hashes of its address). Weights set how many slots
 * each backend takes: a quota proportional to its weight, at least one while
 * there are fewer backends than slots. Backends take turns, one slot each,
 * until their quota is met, so a build costs O(slots + backends) whatever the
 * weights (a credit loop spent millions of idle rounds on one heavy backend).
 * With equal weights this is exactly the paper's round-robin fill.
 * A client's address hashes to a slot. Consequences:
 * - the same client reaches the same backend while the set is unchanged;
 * - removing one of N backends remaps only (about) the clients it held, and
 *   adding one remaps about 1/(N+1) of them;
 * - the table depends only on the set of addresses and weights (sorted, so
 *   not on config order), so every balancer instance with the same backends
 *   maps a client the same way, with no shared state.
 *
 * `update` only records the new candidates; the table is rebuilt at the next
 * pick (or `owner`), so a burst of health changes in one tick costs one build,
 * and a pick never sees a table older than the candidates it was given. A set
 * whose addresses and weights are those of the last build (a flap that settled
 * within the tick) is not rebuilt at all. Slow start does not apply: moving
 * clients while a backend ramps would break their affinity for nothing.
 */
export class IpHash implements Strategy {
  /** Tables built so far: read by tests and the rebuild benchmark. */
  builds = 0;
  private sorted: Backend[] = [];
  /** The weights of `sorted` when its table was built. */
  private builtWeights = new Float64Array(0);
  /** Candidates given by `update` and not yet built into the table. */
  private pending: readonly Backend[] | null = null;
  private readonly table: Int32Array;
  /** Hashing an address is most of the cost of a build, and an address never changes. */
  private readonly perms = new WeakMap<Backend, Permutation>();

  constructor(
    private readonly size = MAGLEV_TABLE_SIZE,
    /**
     * Consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam,
     * "Consistent Hashing with Bounded Loads", 2016; HAProxy's hash-balance-factor):
     * a backend with `factor` % of the average load or more (by weight) is passed
     * over for the next slot's. 0: off.
     */
    private readonly factor = 0,
  ) {
    this.table = new Int32Array(size).fill(-1);
  }

  update(candidates: readonly Backend[]): void {
    this.pending = candidates;
  }

  /** The backend the table gives this client, ignoring availability: for tests and the admin view. */
  owner(clientIp: string): Backend | undefined {
    if (this.pending) this.build(this.pending);
    if (this.sorted.length === 0) return undefined;
    return this.sorted[this.table[hashIp(clientIp) % this.size] as number];
  }

  pick(ctx: PickContext): Backend | undefined {
    if (this.pending) this.build(this.pending);
    const c = this.sorted;
    if (c.length === 0) return undefined;
    const skipTried = mustSkipTried(ctx, c);
    const m = this.size;
    let slot = hashIp(ctx.clientIp) % m;
    if (this.factor > 0) {
      const b = this.bounded(ctx, c, slot, skipTried);
      if (b !== undefined) return b;
    }
    const own = c[this.table[slot] as number] as Backend;
    if (eligible(ctx, own, skipTried)) return own;
    // Its backend cannot take it (capped, rate-limited, already tried): the next slots in turn,
    // deterministic, and spread over the others by the table. Looked for only when one can answer.
    let any = false;
    for (let i = 0; i < c.length; i++) {
      if (eligible(ctx, c[i] as Backend, skipTried)) {
        any = true;
        break;
      }
    }
    if (!any) return undefined;
    // Bounded: with more backends than slots, the eligible one may own no slot.
    for (let k = 1; k < m; k++) {
      slot = slot + 1 === m ? 0 : slot + 1;
      const b = c[this.table[slot] as number] as Backend;
      if (eligible(ctx, b, skipTried)) return b;
    }
    return undefined;
  }

  /**
   * The first backend from `slot` on that is eligible and under its bound:
   * ceil((open sessions + 1) x factor / 100 x its share of the weight). The
   * bounds sum above the load, so one is under it unless caps or retries rule
   * them out (then undefined, and the plain walk decides). O(candidates + slots walked).
   */
  private bounded(
    ctx: PickContext,
    c: readonly Backend[],
    slot: number,
    skipTried: boolean,
  ): Backend | undefined {
    let load = 0;
    let weight = 0;
    for (let i = 0; i < c.length; i++) {
      const b = c[i] as Backend;
      load += b.active;
      weight += b.weight;
    }
    const scale = ((load + 1) * this.factor) / 100 / weight;
    const m = this.size;
    for (let k = 0; k < m; k++) {
      const b = c[this.table[slot] as number] as Backend;
      if (b.active < Math.ceil(scale * b.weight) && eligible(ctx, b, skipTried)) return b;
      slot = slot + 1 === m ? 0 : slot + 1;
    }
    return undefined;
  }

  private build(candidates: readonly Backend[]): void {
    this.pending = null;
    const sorted = [...candidates].sort(byAddress);
    const n = sorted.length;
    const unchanged = n === this.sorted.length && sorted.every(this.builtAs, this);
    // Same addresses and weights in the same places: the table stands; only the objects may be new.
    this.sorted = sorted;
    if (unchanged) return;
    this.builds++;
    this.builtWeights = Float64Array.from(sorted, (b) => b.weight);
    const m = this.size;
    const table = this.table;
    table.fill(-1);
    if (n === 0) return;
    const next = new Int32Array(n);
    const skip = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const p = this.permutation(sorted[i] as Backend);
      next[i] = p.offset;
      skip[i] = p.skip;
    }
    const quota = slotQuotas(this.builtWeights, m);
    // Turns in address order among backends with quota left; the quotas sum to the table size,
    // so every turn finds a free slot and the last turn fills the table.
    const turn = new Int32Array(n);
    let live = 0;
    for (let i = 0; i < n; i++) if ((quota[i] as number) > 0) turn[live++] = i;
    while (live > 0) {
      let kept = 0;
      for (let k = 0; k < live; k++) {
        const i = turn[k] as number;
        const s = skip[i] as number;
        let c = next[i] as number;
        while ((table[c] as number) >= 0) {
          c += s;
          if (c >= m) c -= m;
        }
        table[c] = i;
        c += s;
        next[i] = c >= m ? c - m : c;
        quota[i] = (quota[i] as number) - 1;
        if ((quota[i] as number) > 0) turn[kept++] = i;
      }
      live = kept;
    }
  }

  private builtAs(b: Backend, i: number): boolean {
    const was = this.sorted[i] as Backend;
    return was.address === b.address && this.builtWeights[i] === b.weight;
  }

  private permutation(b: Backend): Permutation {
    let p = this.perms.get(b);
    if (!p) {
      const m = this.size;
      const d = createHash('sha256').update(b.address).digest();
      p = { offset: d.readUInt32BE(0) % m, skip: (d.readUInt32BE(4) % (m - 1)) + 1 };
      this.perms.set(b, p);
    }
    return p;
  }
}

/**
 * Slots per backend, summing to `m`: one each while there are fewer backends
 * than slots (so no backend in the set is unreachable, however light), the
 * rest in proportion to weight, with the leftovers of the rounding to the
 * largest remainders (ties to the lower index, so only the set decides).
 * Equal weights give the first (m mod n) backends one slot more, as the
 * paper's round-robin fill does. Weights are whole numbers >= 1 (validated).
 */
export function slotQuotas(weights: Float64Array, m: number): Int32Array {
  const n = weights.length;
  const quota = new Int32Array(n);
  const rem = new Float64Array(n);
  const base = n <= m ? 1 : 0;
  const spread = m - base * n;
  let total = 0;
  for (let i = 0; i < n; i++) total += weights[i] as number;
  let left = m;
  for (let i = 0; i < n; i++) {
    // Whole numbers below 2^53: the product and the remainder are exact.
    const a = spread * (weights[i] as number);
    let q = Math.floor(a / total);
    if (q * total > a) q--;
    quota[i] = base + q;
    rem[i] = a - q * total;
    left -= base + q;
  }
  if (left > 0) {
    const order = new Int32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    order.sort((x, y) => (rem[y] as number) - (rem[x] as number) || x - y);
    for (let k = 0; k < left; k++) {
      const i = order[k] as number;
      quota[i] = (quota[i] as number) + 1;
    }
  }
  return quota;
}

/** FNV-1a over the address text, then murmur3's finaliser so neighbouring addresses spread. */
export function hashIp(ip: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < ip.length; i++) {
    h ^= ip.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
