import { BlockList, isIPv6 } from 'node:net';
import type { Clock } from '../clock.js';
import { AccessList } from './access-list.js';
import { SourceLimiter, type SourceVerdict } from './source-limits.js';

/** The service keys admission reads. */
export interface AdmissionConfig {
  readonly trustedProxies: readonly string[];
  readonly maxConnectionsPerSource: number;
  readonly maxRatePerSource: number;
  readonly allow: readonly string[];
  readonly deny: readonly string[];
  /** issue 26: the limits are held across instances (through the limiter makeLimiter makes). */
  readonly shareLimits?: boolean;
}

/** Forget quiet sources this often. */
const SWEEP_MS = 10_000;

/**
 * Who may connect to one service: the PROXY-header senders it trusts, its
 * allow/deny lists and the per-source limits. Rebuilt in place by `configure` on a reload; a session
 * keeps the limiter it was counted in, so its release always goes to the
 * right one.
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
    /** issue 26: where limiters come from (shared limits give one whose counts live in Redis); null: local. */
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
    // issue 26: a shared limiter when the service shares its limits (a change of kind is a change).
    const shared = cfg.shareLimits === true && this.makeLimiter !== null;
    const a = cfg.maxConnectionsPerSource;
    const r = cfg.maxRatePerSource;
    if (l.maxConnections !== a || l.maxRate !== r || shared !== this.limiterShared) {
      l.close();
      this.limiter = shared && this.makeLimiter ? this.makeLimiter(a, r) : new SourceLimiter(a, r);
      this.limiterShared = shared;
    }
  }

  /** The limiter new sessions count in (issue 26: the cluster gate asks it for leases). */
  get current(): SourceLimiter {
    return this.limiter;
  }

  /** May this peer send a PROXY header (accept_proxy services refuse everyone else)? */
  trustedSender(ip: string): boolean {
    return this.trusted.check(ip, isIPv6(ip) ? 'ipv6' : 'ipv4');
  }

  /**
   * Counts a new session from `ip` against the per-source limits: the limiter
   * to release it from when it ends (null when no limit is set), or which
   * limit refused it.
   */
  /** `who.clientIp` is read only when a per-source limit is set (reading it may cost a syscall). */
  lease(who: { readonly clientIp: string }): SourceLimiter | null | Exclude<SourceVerdict, 'ok'> {
    const l = this.limiter;
    if (!l.enabled) return null;
    const verdict = l.acquire(who.clientIp, this.clock.now());
    return verdict === 'ok' ? l : verdict;
  }

  close(): void {
    clearInterval(this.sweeper);
    this.limiter.close();
  }
}
