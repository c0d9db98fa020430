import { BlockList, isIPv6 } from 'node:net';
import { badPattern, normalizeName } from '../sni-routes.js';
import type { BackendConfig } from './backend-settings.js';
import { nameOf } from './backend-settings.js';
import { CIDRS, cidrs } from './cidrs.js';
import { describe } from './duration.js';
import { checkKeys, isTable, type Problems } from './fields.js';
import { MAX_PORT_RANGE } from './listen.js';
import { type Fields, keysOf, listOf } from './spec.js';
import { ALPN_PROTOCOL } from './tls.js';

/**
 * One `[[services.NAME.route]]`: clients it matches (every condition given
 * must hold; within a list, any member) go to its backend group. HAProxy's
 * `use_backend be if { src 10.0.0.0/8 }`, nginx's `map $remote_addr`.
 */
export interface RouteConfig {
  /** Its label in metrics and the access log: `name`, else "route[I]". */
  readonly name: string;
  /** Client CIDRs ("addr/prefix", after a trusted PROXY header); null: any client. */
  readonly source: readonly string[] | null;
  /** Local ports the client connected to; null: any. */
  readonly port: readonly number[] | null;
  /** ClientHello server names (exact, "*.domain", "*"); null: any, or no hello read. */
  readonly sni: readonly string[] | null;
  /** ClientHello ALPN protocols, one of which the client must offer; null: any. */
  readonly alpn: readonly string[] | null;
  /** The group: backend names (or addresses) of the service. */
  readonly backends: readonly string[];
}

const PORT = { kind: 'integer', min: 1, max: 65535, doc: 'A port' } as const;
const PORT_RANGE = {
  kind: 'string',
  pattern: '^[0-9]{1,5}-[0-9]{1,5}$',
  doc: 'A port range "FIRST-LAST"',
} as const;
const PORT_OR_RANGE = {
  kind: 'anyOf',
  options: [PORT, PORT_RANGE],
  doc: 'A port or "FIRST-LAST"',
} as const;

export const ROUTE_FIELDS = {
  name: {
    kind: 'string',
    pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,62}$',
    doc: 'The route’s label in metrics and the access log (absent: "route[I]", its place in the list)',
  },
  source: CIDRS('Client addresses it takes (after a trusted PROXY header), e.g. ["10.20.0.0/16"]'),
  port: {
    kind: 'anyOf',
    options: [PORT, PORT_RANGE, { kind: 'list', minItems: 1, items: PORT_OR_RANGE, doc: 'Ports' }],
    doc: 'Local port(s) the client connected to (among the service’s listen ports): 6432, "7000-7010" or [6432, "7000-7010"]',
  },
  sni: listOf(
    { kind: 'string', doc: 'A host name, "*.domain" or "*"' },
    'Server names from the ClientHello (services with sni or tls only)',
  ),
  alpn: listOf(
    ALPN_PROTOCOL,
    'ALPN protocols, one of which the ClientHello must offer (services with sni or tls only)',
  ),
  backends: {
    kind: 'list',
    minItems: 1,
    items: { kind: 'string', doc: 'A backend’s name (or its address when it has none)' },
    doc: 'The backend group matching clients go to; it keeps the service’s balance, health and pool',
    required: true,
  },
} satisfies Fields;
const ROUTE_KEYS = keysOf(ROUTE_FIELDS);

/** What a route checks against: the service it belongs to. */
export interface RouteContext {
  readonly path: string;
  readonly backends: readonly BackendConfig[];
  /** Discovered backends may carry the names a route gives: unknown names are not errors then. */
  readonly discovery: boolean;
  /** The service reads a ClientHello (sni or tls): sni/alpn conditions can be met. */
  readonly readsHello: boolean;
  /** The ports it listens on; null: unknown until start (a passed socket, or port 0). */
  readonly ports: readonly number[] | null;
}

/** `route = [...]` (written as [[services.NAME.route]] tables), checked whole; empty when absent. */
export function parseRoutes(v: unknown, ctx: RouteContext, p: Problems): readonly RouteConfig[] {
  const path = `${ctx.path}.route`;
  if (v === undefined) return Object.freeze([]);
  if (!Array.isArray(v)) {
    p.add(path, `expected [[${ctx.path}.route]] tables, got ${describe(v)}`);
    return Object.freeze([]);
  }
  const out: RouteConfig[] = [];
  const names = new Set<string>();
  /** Routes parsed without a problem, with their place: only those can shadow a later one. */
  const clean: { readonly r: RouteConfig; readonly i: number }[] = [];
  v.forEach((raw, i) => {
    const at = `${path}[${i}]`;
    if (!isTable(raw)) {
      p.add(at, `expected a table, got ${describe(raw)}`);
      return;
    }
    checkKeys(raw, ROUTE_KEYS, at, p);
    const before = p.list.length;
    const r = parseRoute(raw, i, at, ctx, p);
    out.push(r);
    if (names.has(r.name)) p.add(`${at}.name`, `another route is named "${r.name}"`);
    names.add(r.name);
    // A route with a bad condition is reported as such, not also as shadowed.
    if (p.list.length > before) return;
    const shadow = clean.find((e) => covers(e.r, r));
    if (shadow)
      p.add(
        at,
        `can never match: every client it takes is taken by ${path}[${shadow.i}] first (its conditions are a subset of that route's); reorder or narrow them`,
      );
    clean.push({ r, i });
  });
  return Object.freeze(out);
}

function parseRoute(
  t: Record<string, unknown>,
  i: number,
  at: string,
  ctx: RouteContext,
  p: Problems,
): RouteConfig {
  const name =
    typeof t.name === 'string' && new RegExp(ROUTE_FIELDS.name.pattern).test(t.name)
      ? t.name
      : `route[${i}]`;
  if (t.name !== undefined && name !== t.name)
    p.add(
      `${at}.name`,
      `expected letters, digits and . _ - : (up to 63, starting with a letter or digit), got ${describe(t.name)}`,
    );
  const source = t.source === undefined ? null : cidrs(t.source, `${at}.source`, p);
  if (Array.isArray(t.source) && t.source.length === 0)
    p.add(`${at}.source`, 'empty: leave it out to take every client');
  const port = ports(t.port, `${at}.port`, ctx, p);
  const sni = names(t.sni, `${at}.sni`, p, (n, path) => {
    const bad = badPattern(n);
    if (bad) p.add(path, bad);
    return bad ? null : n === '*' ? '*' : normalizeName(n);
  });
  const alpn = names(t.alpn, `${at}.alpn`, p, (n) => n);
  if ((sni || alpn) && !ctx.readsHello)
    p.add(
      `${at}.${sni ? 'sni' : 'alpn'}`,
      'this service reads no ClientHello: sni and alpn conditions need sni = [...] or [tls] on the service',
    );
  return Object.freeze({ name, source, port, sni, alpn, backends: group(t.backends, at, ctx, p) });
}

function ports(v: unknown, path: string, ctx: RouteContext, p: Problems): readonly number[] | null {
  if (v === undefined) return null;
  const list = Array.isArray(v) ? v : [v];
  if (list.length === 0) {
    p.add(path, 'empty: leave it out to take every port');
    return null;
  }
  const out: number[] = [];
  list.forEach((n, j) => {
    const at = Array.isArray(v) ? `${path}[${j}]` : path;
    for (const port of portsOf(n, at, p)) {
      if (ctx.ports !== null && !ctx.ports.includes(port)) {
        p.add(
          at,
          `${port} is not a port this service listens on (${ctx.ports.join(', ')}): the route could never match`,
        );
        return;
      }
      out.push(port);
    }
  });
  return Object.freeze(out);
}

/** A port, or the ports of "FIRST-LAST" (at most MAX_PORT_RANGE, as a listen range); [] with a problem otherwise. */
function portsOf(n: unknown, at: string, p: Problems): number[] {
  if (typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 65535) return [n];
  const m = typeof n === 'string' ? /^(\d{1,5})-(\d{1,5})$/.exec(n) : null;
  const first = Number(m?.[1]);
  const last = Number(m?.[2]);
  if (!m || first < 1 || last > 65535 || first > last || last - first + 1 > MAX_PORT_RANGE) {
    p.add(
      at,
      `expected a port 1-65535 or a range "FIRST-LAST" of at most ${MAX_PORT_RANGE} ports, got ${describe(n)}`,
    );
    return [];
  }
  return Array.from({ length: last - first + 1 }, (_, i) => first + i);
}

function names(
  v: unknown,
  path: string,
  p: Problems,
  norm: (n: string, path: string) => string | null,
): readonly string[] | null {
  if (v === undefined) return null;
  if (!Array.isArray(v) || v.length === 0) {
    p.add(path, `expected a non-empty array of strings, got ${describe(v)}`);
    return null;
  }
  const out: string[] = [];
  v.forEach((n, j) => {
    if (typeof n !== 'string' || n === '') {
      p.add(`${path}[${j}]`, `expected a string, got ${describe(n)}`);
      return;
    }
    const x = norm(n, `${path}[${j}]`);
    if (x !== null) out.push(x);
  });
  return Object.freeze(out);
}

function group(v: unknown, at: string, ctx: RouteContext, p: Problems): readonly string[] {
  const path = `${at}.backends`;
  if (v === undefined) {
    p.add(path, 'missing; a route needs backends = ["name", ...], the group its clients go to');
    return Object.freeze([]);
  }
  if (!Array.isArray(v) || v.length === 0) {
    p.add(
      path,
      Array.isArray(v)
        ? 'empty: a route needs at least one backend, the group its clients go to'
        : `expected an array of backend names, got ${describe(v)}`,
    );
    return Object.freeze([]);
  }
  const known = new Set(ctx.backends.flatMap((b) => [nameOf(b), b.address]));
  const out: string[] = [];
  v.forEach((n, j) => {
    if (typeof n !== 'string') {
      p.add(`${path}[${j}]`, `expected a backend name, got ${describe(n)}`);
      return;
    }
    if (!known.has(n) && !ctx.discovery)
      p.add(
        `${path}[${j}]`,
        `no backend of ${ctx.path} is named "${n}" (names: ${ctx.backends.map(nameOf).join(', ')})`,
      );
    // A name the file uses for an address: the group holds the name.
    const named = ctx.backends.find((b) => b.address === n);
    out.push(named ? nameOf(named) : n);
  });
  return Object.freeze(out);
}

/** Whether every client `later` takes, `earlier` takes first: each condition of `earlier` is absent or wider. */
function covers(earlier: RouteConfig, later: RouteConfig): boolean {
  return (
    wider(earlier.source, later.source, cidrCovers) &&
    wider(earlier.port, later.port, (a, b) => a === b) &&
    wider(earlier.sni, later.sni, sniCovers) &&
    wider(earlier.alpn, later.alpn, (a, b) => a === b)
  );
}

/** `a` (null: anything) takes every value `b` (null: anything) does: each of b's within one of a's. */
function wider<T>(
  a: readonly T[] | null,
  b: readonly T[] | null,
  within: (outer: T, inner: T) => boolean,
): boolean {
  if (a === null) return true;
  if (b === null) return false;
  return b.every((x) => a.some((y) => within(y, x)));
}

/** "b/q" holds "a/p" when q <= p and a's first q bits are b's (a's own mask does not matter then). */
function cidrCovers(outer: string, inner: string): boolean {
  const [b, q] = outer.split('/') as [string, string];
  const [a, pfx] = inner.split('/') as [string, string];
  if (isIPv6(a) !== isIPv6(b) || Number(q) > Number(pfx)) return false;
  const l = new BlockList();
  const family = isIPv6(b) ? 'ipv6' : 'ipv4';
  l.addSubnet(b, Number(q), family);
  return l.check(a, family);
}

/** "*" holds any name; "*.d" holds "x.d" (one label); a name holds itself. */
function sniCovers(outer: string, inner: string): boolean {
  if (outer === '*' || outer === inner) return true;
  if (!outer.startsWith('*.') || inner.startsWith('*')) return false;
  const dot = inner.indexOf('.');
  return dot > 0 && inner.slice(dot + 1) === outer.slice(2);
}
