/*
 * A leaf (imports nothing): the config schema checks sni patterns with it,
 * and proxy/tls/front.ts routes by it.
 */

/** Lower case, one trailing dot dropped: the form names are matched in. */
export function normalizeName(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/**
 * The routing table of one shared listen address: which service takes a
 * ClientHello, by its server name and ALPN. Names are exact ("api.example.com"),
 * one-label wildcards ("*.example.com" takes "a.example.com", not
 * "example.com" nor "a.b.example.com") or the default "*" (unmatched or
 * missing names). The most specific name that has a route for the hello
 * wins: exact, then wildcard, then "*". Under one name, a route with `alpn`
 * takes hellos offering one of its protocols (the client's first choice
 * first); a route without `alpn` takes the rest.
 */
export interface SniRoute<T> {
  readonly target: T;
  /** The pattern as configured and normalised: the route's label in metrics. */
  readonly pattern: string;
}

interface Slot<T> {
  readonly byAlpn: Map<string, SniRoute<T>>;
  fallback: SniRoute<T> | null;
}

/** What a route entry says, before it is a route. */
export interface RouteSpec<T> {
  readonly target: T;
  readonly sni: readonly string[];
  readonly alpn: readonly string[] | null;
}

/** Why a pattern is not one this table takes, or null. */
export function badPattern(p: string): string | null {
  if (p === '*') return null;
  const n = normalizeName(p);
  const rest = n.startsWith('*.') ? n.slice(2) : n;
  if (!/^(?=.{1,253}$)[a-z0-9_-]+(?:\.[a-z0-9_-]+)*$/.test(rest))
    return `expected a host name, "*.domain" (one label) or "*", got ${JSON.stringify(p)}`;
  return null;
}

export class SniRoutes<T> {
  private readonly exact = new Map<string, Slot<T>>();
  /** Keyed by what follows "*.". */
  private readonly wild = new Map<string, Slot<T>>();
  private any: Slot<T> | null = null;

  /**
   * Adds a route; returns the target that already takes one of its
   * name/ALPN pairs (an ambiguous overlap) with the pair, or null.
   */
  add(spec: RouteSpec<T>): { clash: T; pattern: string; alpn: string | null } | null {
    for (const raw of spec.sni) {
      const pattern = raw === '*' ? '*' : normalizeName(raw);
      const slot = this.slot(pattern);
      const route: SniRoute<T> = { target: spec.target, pattern };
      if (!spec.alpn) {
        if (slot.fallback && slot.fallback.target !== spec.target)
          return { clash: slot.fallback.target, pattern, alpn: null };
        slot.fallback = route;
        continue;
      }
      for (const proto of spec.alpn) {
        const had = slot.byAlpn.get(proto);
        if (had && had.target !== spec.target) return { clash: had.target, pattern, alpn: proto };
        slot.byAlpn.set(proto, route);
      }
    }
    return null;
  }

  private slot(pattern: string): Slot<T> {
    const fresh = (): Slot<T> => ({ byAlpn: new Map(), fallback: null });
    if (pattern === '*') {
      this.any ??= fresh();
      return this.any;
    }
    const map = pattern.startsWith('*.') ? this.wild : this.exact;
    const key = pattern.startsWith('*.') ? pattern.slice(2) : pattern;
    let s = map.get(key);
    if (!s) {
      s = fresh();
      map.set(key, s);
    }
    return s;
  }

  /** The route for a hello (name already normalised, as the parser gives it), or null: refused. */
  pick(serverName: string | null, alpn: readonly string[] | null): SniRoute<T> | null {
    if (serverName !== null) {
      const e = this.exact.get(serverName);
      const r = e && choose(e, alpn);
      if (r) return r;
      const dot = serverName.indexOf('.');
      if (dot > 0) {
        const w = this.wild.get(serverName.slice(dot + 1));
        const rw = w && choose(w, alpn);
        if (rw) return rw;
      }
    }
    return this.any ? choose(this.any, alpn) : null;
  }
}

function choose<T>(slot: Slot<T>, alpn: readonly string[] | null): SniRoute<T> | null {
  if (alpn && slot.byAlpn.size > 0) {
    for (const proto of alpn) {
      const r = slot.byAlpn.get(proto);
      if (r) return r;
    }
  }
  return slot.fallback;
}
