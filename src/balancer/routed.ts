import type { Backend } from '../backend/backend.js';
import type { BackendSet } from '../backend/backend-set.js';
import { candidatesOf, sameCandidates } from '../backend/candidates.js';
import type { ServiceConfig } from '../config/types.js';
import { createStrategy, type StrategyOptions } from './index.js';
import { type RouteInput, RouteTable, UNROUTED } from './route-table.js';
import type { PickContext, Strategy } from './strategy.js';

/** The label of clients no route takes: they use every backend. */
export const DEFAULT_ROUTE = 'default';
/** A pick through routes: the dial remembers the route it took (matched once, at its first pick). */
export interface RoutedPickContext extends PickContext {
  readonly localPort: RouteInput['localPort'];
  readonly serverName: RouteInput['serverName'];
  readonly alpn: RouteInput['alpn'];
  route: number;
  routeName: string | null;
}

interface Group {
  readonly names: ReadonlySet<string>;
  readonly strategy: Strategy;
  cands: readonly Backend[];
  weights: number[];
  /** The group's candidates by address, for a stick table (candidateAt). */
  byAddress: Map<string, Backend>;
}

/**
 * A service with [[services.NAME.route]]: each route's backend group has a
 * strategy of the service's kind over the group's own candidates (health,
 * backups and all_down applied within the group, as if it were a service);
 * clients no route takes use the service's candidates. Sessions are counted
 * per route. Only a service with routes has one: the others pick as before.
 */
export class RouteStrategy implements Strategy {
  private readonly table: RouteTable;
  private readonly names: readonly string[];
  private readonly groups: readonly Group[];
  private readonly all: Strategy;
  /** The service's candidates by address (clients no route takes). */
  private allByAddress = new Map<string, Backend>();
  /** Sessions by route (and DEFAULT_ROUTE), read by /metrics; carried over a reload. */
  readonly counts: Record<string, number>;
  private readonly onState = (): void => this.refreshGroups();

  constructor(
    private readonly cfg: ServiceConfig,
    opts: StrategyOptions,
    private readonly backends: BackendSet,
    prev: Strategy | null,
  ) {
    const make = (): Strategy =>
      createStrategy(cfg.balance, {
        ...opts,
        hashBalanceFactor: cfg.hashBalanceFactor,
        latencyDecayMs: cfg.latencyDecayMs,
      });
    this.table = new RouteTable(cfg.routes);
    this.names = cfg.routes.map((r) => r.name);
    this.groups = cfg.routes.map((r) => ({
      names: new Set(r.backends),
      strategy: make(),
      cands: [],
      weights: [],
      byAddress: new Map(),
    }));
    this.all = make();
    const had = prev instanceof RouteStrategy ? prev.counts : {};
    this.counts = { [DEFAULT_ROUTE]: had[DEFAULT_ROUTE] ?? 0 };
    for (const n of this.names) this.counts[n] = had[n] ?? 0;
    // A group's candidates can change while the service's do not (a backup of the group, a
    // backend that the group lacks): every state change is looked at.
    backends.on('state', this.onState);
  }

  /** A latency sample reaches every strategy that has the backend (least-latency keeps one per group). */
  observe(b: Backend, ms: number, now: number): void {
    if (this.all.observe === undefined) return;
    this.all.observe(b, ms, now);
    for (const g of this.groups)
      if (g.names.has(b.name) || g.names.has(b.address)) g.strategy.observe?.(b, ms, now);
  }

  /** Stops following the backend set (a reload replaced this strategy). */
  dispose(): void {
    this.backends.off('state', this.onState);
  }

  update(candidates: readonly Backend[]): void {
    const m = new Map<string, Backend>();
    for (const b of candidates) m.set(b.address, b);
    this.allByAddress = m;
    this.all.update(candidates);
    this.refreshGroups();
  }

  pick(ctx: RoutedPickContext): Backend | undefined {
    return this.strategyOf(ctx).pick(ctx);
  }

  /** No candidate in the dial's group (the service may have some): the dial fails at once, as with none at all. */
  emptyFor(ctx: RoutedPickContext): boolean {
    const r = this.routeOf(ctx);
    return r >= 0 && (this.groups[r] as Group).cands.length === 0;
  }

  /** The candidate at `address` in the dial's group (the route is matched here if not yet). */
  candidateAt(ctx: RoutedPickContext, address: string): Backend | undefined {
    const r = this.routeOf(ctx);
    return (r < 0 ? this.allByAddress : (this.groups[r] as Group).byAddress).get(address);
  }

  private strategyOf(ctx: RoutedPickContext): Strategy {
    const r = this.routeOf(ctx);
    return r < 0 ? this.all : (this.groups[r] as Group).strategy;
  }

  private routeOf(ctx: RoutedPickContext): number {
    if (ctx.route !== UNROUTED) return ctx.route;
    const r = this.table.match(ctx);
    const name = r < 0 ? DEFAULT_ROUTE : (this.names[r] as string);
    ctx.route = r;
    ctx.routeName = name;
    this.counts[name] = (this.counts[name] as number) + 1;
    return r;
  }

  private refreshGroups(): void {
    for (const g of this.groups) {
      const members = this.backends.all.filter(
        (b) => g.names.has(b.name) || g.names.has(b.address),
      );
      const c = candidatesOf(members, this.cfg.allDown);
      if (sameCandidates(c, g.cands, g.weights)) continue;
      g.cands = c;
      g.weights = c.map((b) => b.weight);
      g.byAddress = new Map(c.map((b) => [b.address, b]));
      g.strategy.update(c);
    }
  }
}

/** The route counts of a service's strategy (empty without routes), for /metrics. */
export function routeCounts(s: Strategy): Readonly<Record<string, number>> {
  return s instanceof RouteStrategy ? s.counts : {};
}
