import { createHash } from 'node:crypto';
import type { Backend } from '../backend/backend.js';
import { eligible, mustSkipTried, type PickContext, type Strategy } from './strategy.js';

/** Maglev lookup-table size: a prime, so every skip step visits every slot. */
export const MAGLEV_TABLE_SIZE = 65537;

/**
 * ip-hash through a Maglev lookup table (Eisenbud et al., "Maglev: A Fast and
 * Reliable Software Network Load Balancer", NSDI 2016, section 3.4).
 *
 * Each backend fills table slots in the order of its own permutation
 * (offset + j * skip, from hashes of its address) until the table is full;
 * weights are honoured by letting a backend take a slot only once its credit,
 * grown by its weight each round, reaches the largest weight. A client's
 * address hashes to a slot. Consequences:
 * - the same client reaches the same backend while the set is unchanged;
 * - removing one of N backends remaps only (about) the clients it held, and
 *   adding one remaps about 1/(N+1) of them;
 * - the table depends only on the set of addresses and weights (sorted, so
 *   not on config order), so every balancer instance with the same backends
 *   maps a client the same way, with no shared state.
 *
 * The table is rebuilt in `update` (membership, health, weight changes),
 * never per pick. Slow start does not apply: moving clients while a backend
 * ramps would break their affinity for nothing.
 */
export class IpHash implements Strategy {
  private sorted: Backend[] = [];
  private readonly table: Int32Array;

  constructor(private readonly size = MAGLEV_TABLE_SIZE) {
    this.table = new Int32Array(size);
  }

  update(candidates: readonly Backend[]): void {
    this.sorted = [...candidates].sort((a, b) =>
      a.address < b.address ? -1 : a.address > b.address ? 1 : 0,
    );
    const n = this.sorted.length;
    const m = this.size;
    this.table.fill(-1);
    if (n === 0) return;
    const offset = new Float64Array(n);
    const skip = new Float64Array(n);
    const next = new Float64Array(n);
    const credit = new Float64Array(n);
    let maxW = 0;
    for (let i = 0; i < n; i++) {
      const b = this.sorted[i] as Backend;
      const d = createHash('sha256').update(b.address).digest();
      offset[i] = d.readUInt32BE(0) % m;
      skip[i] = (d.readUInt32BE(4) % (m - 1)) + 1;
      if (b.weight > maxW) maxW = b.weight;
    }
    let filled = 0;
    while (filled < m) {
      for (let i = 0; i < n && filled < m; i++) {
        credit[i] = (credit[i] as number) + (this.sorted[i] as Backend).weight;
        if ((credit[i] as number) < maxW) continue;
        credit[i] = (credit[i] as number) - maxW;
        let c = ((offset[i] as number) + (next[i] as number) * (skip[i] as number)) % m;
        while ((this.table[c] as number) >= 0) {
          next[i] = (next[i] as number) + 1;
          c = ((offset[i] as number) + (next[i] as number) * (skip[i] as number)) % m;
        }
        this.table[c] = i;
        next[i] = (next[i] as number) + 1;
        filled++;
      }
    }
  }

  /** The backend the table gives this client, ignoring availability: for tests and the admin view. */
  owner(clientIp: string): Backend | undefined {
    if (this.sorted.length === 0) return undefined;
    return this.sorted[this.table[hashIp(clientIp) % this.size] as number];
  }

  pick(ctx: PickContext): Backend | undefined {
    const c = this.sorted;
    if (c.length === 0) return undefined;
    const skipTried = mustSkipTried(ctx, c);
    let any = false;
    for (let i = 0; i < c.length; i++) {
      if (eligible(ctx, c[i] as Backend, skipTried)) {
        any = true;
        break;
      }
    }
    if (!any) return undefined;
    // The client's own slot, or, when its backend cannot take it (capped, rate-limited, already
    // tried), the next slots in turn: deterministic, and spread over the others by the table.
    const m = this.size;
    let slot = hashIp(ctx.clientIp) % m;
    for (;;) {
      const b = c[this.table[slot] as number] as Backend;
      if (eligible(ctx, b, skipTried)) return b;
      slot = slot + 1 === m ? 0 : slot + 1;
    }
  }
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
