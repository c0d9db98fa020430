import { readdirSync, readFileSync } from 'node:fs';
import type { Clock } from '../clock.js';
import type { Config } from '../config/schema.js';

/** The soft RLIMIT_NOFILE of this process (Linux /proc), or null where it cannot be read. */
export function openFileLimit(): number | null {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.split(/\s+/)[3];
    const n = Number(soft);
    return soft === 'unlimited' || !Number.isFinite(n) ? null : n;
  } catch {
    return null;
  }
}

function openFdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/**
 * Descriptors a config may hold at once: two per session, the warm pools
 * at max_idle, a probe per backend, a listener per `listen` address, the
 * admin server's connection cap, and a little for the process itself.
 */
export function descriptorsNeeded(config: Config): number {
  let n = 64;
  for (const s of config.services)
    n += 2 * s.maxConnections + s.backends.length * (s.pool.maxIdle + 1) + 1 + s.alsoListen.length;
  return config.admin ? n + 64 : n;
}

/**
 * A reserve of descriptors the balancer keeps for itself. At the limit,
 * libuv accepts and closes new clients silently, and then probes, pool
 * refills and the admin server fail too (EMFILE). So new clients are refused
 * by us, counted and access-logged, while open descriptors are within
 * `reserve` of the soft limit: what is left keeps probes, refills and the
 * admin server working.
 *
 * Open descriptors are sampled from /proc/self/fd (often when near the
 * limit, rarely when far), and sessions started and ended since the sample
 * are added (two descriptors each), so the check on accept is two additions.
 * Where /proc is missing, nothing is refused.
 */
export class FdBudget {
  readonly limit: number | null;
  readonly reserve: number;
  private sampled = 0;
  private sinceSample = 0;
  private sampledAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly clock: Clock,
    limit: number | null = openFileLimit(),
  ) {
    this.limit = limit;
    this.reserve = limit === null ? 0 : Math.min(1024, Math.max(16, Math.ceil(limit * 0.05)));
  }

  /** A new client may be taken: its session's two descriptors fit outside the reserve. */
  admit(): boolean {
    const limit = this.limit;
    if (limit === null) return true;
    const now = this.clock.now();
    const estimate = this.sampled + this.sinceSample;
    // Far from the limit a stale sample is harmless (and a sample costs a string per open
    // descriptor); within four reserves of it, look again every 100 ms.
    const maxAge = estimate < limit - 4 * this.reserve ? 2000 : 100;
    if (now - this.sampledAt > maxAge) {
      this.sampledAt = now;
      try {
        this.sampled = openFdCount();
        this.sinceSample = 0;
      } catch {
        // Reading /proc/self/fd needs a descriptor too: none left means refuse.
        return false;
      }
    }
    return this.sampled + this.sinceSample + 2 <= limit - this.reserve;
  }

  /** A session took (+2) or gave back (-2) its descriptors since the last sample. */
  adjust(n: number): void {
    this.sinceSample += n;
  }
}
