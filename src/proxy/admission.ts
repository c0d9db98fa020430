import { BlockList, isIPv6 } from 'node:net';
import type { Clock } from '../clock.js';
import { AccessList } from './access-list.js';
import { SourceLimiter } from './source-limits.js';

/** The service keys admission reads. */
export interface AdmissionConfig {
  readonly trustedProxies: readonly string[];
  readonly maxConnectionsPerSource: number;
  readonly maxRatePerSource: number;
  readonly allow: readonly string[];
  readonly deny: readonly string[];
  /** The limits are held across instances (through the limiter makeLimiter makes). */
  readonly shareLimits?: boolean;
}

/** Why the checks on who a client is turned it away: allow/deny, or which per-source limit. */
export type Refusal = 'denied' | 'connections' | 'rate';

/**
 * A client that passed the checks on who it is: the key it counts under and
 * the per-source limiter to release it from (null: no limit applies).
 */
export interface SourcePass {
  readonly ip: string;
  readonly limiter: SourceLimiter | null;
}

/** Forget quiet sources this often. */
const SWEEP_MS = 10_000;

/**
 * Who may connect to one service, in the order the checks run: the
 * PROXY-header senders it trusts, its allow/deny lists, its per-source limits
 * (listener capacity and the descriptor reserve come first, in
 * proxy/listener.ts). Where each stage runs: proxy/sessions.ts for a
 * listener of its own (at accept, or after the PROXY header), and
 * SharedAdmission below for a listener whose clients a front reads.
 *
 * Rebuilt in place by `configure` on a reload; a session keeps the limiter it
 * was counted in, so its release always goes to the right one.
 */
export class Admission {
  private trusted = new BlockList();
  private trustedFor: readonly string[] | null = null;
  private limiter = new SourceLimiter(0, 0);
  private limiterShared = false;
  /** allow/deny; null when the service has neither (the common case costs one null check). */
  access: AccessList | null = null;
  private accessFor: readonly (readonly string[])[] = [];
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    cfg: AdmissionConfig,
    private readonly clock: Clock,
    /** Where limiters come from (shared limits give one whose counts live in Redis); null: local. */
    private readonly makeLimiter:
      | ((maxConnections: number, maxRate: number) => SourceLimiter)
      | null = null,
  ) {
    this.configure(cfg);
    this.sweeper = setInterval(() => this.limiter.sweep(this.clock.now()), SWEEP_MS);
    this.sweeper.unref();
  }

  /** A changed trust list or allow/deny list is rebuilt; changed limits start a new limiter (counts restart from zero). */
  configure(cfg: AdmissionConfig): void {
    if (this.trustedFor !== cfg.trustedProxies) {
      this.trusted = new BlockList();
      for (const c of cfg.trustedProxies) {
        const [addr, prefix] = c.split('/') as [string, string];
        this.trusted.addSubnet(addr, Number(prefix), isIPv6(addr) ? 'ipv6' : 'ipv4');
      }
      this.trustedFor = cfg.trustedProxies;
    }
    if (this.accessFor[0] !== cfg.allow || this.accessFor[1] !== cfg.deny) {
      this.access = AccessList.of(cfg.allow, cfg.deny);
      this.accessFor = [cfg.allow, cfg.deny];
    }
    const l = this.limiter;
    // a shared limiter when the service shares its limits (a change of kind is a change).
    const shared = cfg.shareLimits === true && this.makeLimiter !== null;
    const a = cfg.maxConnectionsPerSource;
    const r = cfg.maxRatePerSource;
    if (l.maxConnections !== a || l.maxRate !== r || shared !== this.limiterShared) {
      l.close();
      this.limiter = shared && this.makeLimiter ? this.makeLimiter(a, r) : new SourceLimiter(a, r);
      this.limiterShared = shared;
    }
  }

  /** The limiter new sessions count in (the cluster gate asks it for leases). */
  get current(): SourceLimiter {
    return this.limiter;
  }

  /** May this peer send a PROXY header (accept_proxy services refuse everyone else)? */
  trustedSender(ip: string): boolean {
    return this.trusted.check(ip, isIPv6(ip) ? 'ipv6' : 'ipv4');
  }

  /** Do allow/deny admit `ip` (a client key)? */
  admits(ip: string): boolean {
    return this.access === null || this.access.admits(ip);
  }

  /** The open sessions one source may hold (0: no limit). */
  get perSourceLimit(): number {
    return this.limiter.maxConnections;
  }

  /**
   * Counts a new session from `ip` against the per-source limits: the limiter
   * to release it from when it ends (null when no limit is set), or which
   * limit refused it. `who.clientIp` is read only when a per-source limit is
   * set (reading a socket's address may cost a syscall). `atOnce`: the accept
   * cannot wait for the cluster gate (see SourceLimiter.acquireAtOnce).
   */
  lease(
    who: { readonly clientIp: string },
    atOnce = false,
  ): SourceLimiter | null | Exclude<Refusal, 'denied'> {
    const l = this.limiter;
    if (!l.enabled) return null;
    const now = this.clock.now();
    const verdict = atOnce ? l.acquireAtOnce(who.clientIp, now) : l.acquire(who.clientIp, now);
    return verdict === 'ok' ? l : verdict;
  }

  /** The checks on who a client is, in order: allow/deny, then the per-source limits. */
  judge(ip: string): SourcePass | Refusal {
    if (!this.admits(ip)) return 'denied';
    const lease = this.lease({ clientIp: ip }, true);
    return typeof lease === 'string' ? lease : { ip, limiter: lease };
  }

  close(): void {
    clearInterval(this.sweeper);
    this.limiter.close();
  }
}

/** A pass taken at a listener a front reads, before the hello names the service. */
export interface PendingPass extends SourcePass {
  /**
   * The pass of the one service behind the listener, carried on to its
   * session; false: counted by the listener alone, given back at hand-over,
   * and the service the hello routes to judges the client again.
   */
  readonly carried: boolean;
}

/**
 * The checks a listener whose clients a front reads (proxy/tls/front.ts) runs
 * at accept, or after the PROXY header, before any hello byte is read, so
 * clients nobody may serve never wait for their hello and never fill the
 * listener (a denied or over-limit source holding idle connections would
 * lock everyone else out).
 *
 * One service behind it: that service's own checks, and the pass goes on
 * with the client to its session. Several: a client every one of them
 * denies is refused; one still sending its hello counts against its own
 * source, up to the largest per-source limit of those services (none when one
 * has none), and is judged again by the service its hello routes to.
 */
export class SharedAdmission {
  private readonly waiting = new Map<string, number>();
  private readonly limit: number;

  constructor(private readonly services: readonly Admission[]) {
    this.limit = services.some((a) => a.perSourceLimit <= 0)
      ? 0
      : Math.max(...services.map((a) => a.perSourceLimit));
  }

  /** At accept (or after the PROXY header): the client's pass, or why it is refused. */
  judge(ip: string): PendingPass | Refusal {
    const only = this.services.length === 1 ? this.services[0] : undefined;
    if (only !== undefined) {
      const v = only.judge(ip);
      return typeof v === 'string' ? v : { ip, limiter: v.limiter, carried: true };
    }
    if (!this.services.some((a) => a.admits(ip))) return 'denied';
    if (this.limit > 0) {
      const n = this.waiting.get(ip) ?? 0;
      if (n >= this.limit) return 'connections';
      this.waiting.set(ip, n + 1);
    }
    return { ip, limiter: null, carried: false };
  }

  /** Gives a pass back: its client left or was refused, or (not carried) was handed to its service. */
  release(p: PendingPass): void {
    if (p.carried) {
      p.limiter?.release(p.ip);
      return;
    }
    const n = this.waiting.get(p.ip);
    if (n === undefined) return;
    if (n <= 1) this.waiting.delete(p.ip);
    else this.waiting.set(p.ip, n - 1);
  }
}
