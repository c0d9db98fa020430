import { isIP } from 'node:net';
import { describe } from './duration.js';
import type { Problems } from './fields.js';

/** The spec of a list of CIDRs (allow, deny, trusted_proxies). */
export const CIDRS = (doc: string) =>
  ({
    kind: 'list',
    items: { kind: 'string', doc: 'An address or CIDR: "10.0.0.0/8", "127.0.0.1", "::1/128"' },
    doc,
  }) as const;

/** A list of "addr" or "addr/prefix" (IPv4 or IPv6), normalised to "addr/prefix". */
export function cidrs(v: unknown, path: string, p: Problems): readonly string[] {
  if (v === undefined) return Object.freeze([]);
  if (!Array.isArray(v)) {
    p.add(path, `expected an array of CIDRs such as ["10.0.0.0/8"], got ${describe(v)}`);
    return Object.freeze([]);
  }
  const out: string[] = [];
  v.forEach((c, i) => {
    const m = typeof c === 'string' ? /^([^/]+)(?:\/(\d{1,3}))?$/.exec(c) : null;
    const fam = m ? isIP(m[1] as string) : 0;
    const prefix = m?.[2] === undefined ? (fam === 6 ? 128 : 32) : Number(m[2]);
    if (!m || fam === 0 || prefix > (fam === 6 ? 128 : 32)) {
      p.add(
        `${path}[${i}]`,
        `expected a CIDR such as "10.0.0.0/8" or "::1/128", got ${describe(c)}`,
      );
      return;
    }
    out.push(`${m[1]}/${prefix}`);
  });
  return Object.freeze(out);
}
