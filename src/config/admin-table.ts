import { parseHostPort } from './address.js';
import { adminListen } from './admin.js';
import { describe } from './duration.js';
import { knownTable, type Problems } from './fields.js';
import { type Fields, keysOf } from './spec.js';
import type { Config, ParseOptions } from './types.js';

/** [admin]: the status page, /metrics and /api/*. */
export const ADMIN_FIELDS = {
  listen: {
    kind: 'anyOf',
    required: true,
    options: [
      { kind: 'address', doc: '"host:port" (loopback unless you mean it)' },
      { kind: 'string', pattern: '^unix:.+$', doc: '"unix:PATH": a Unix socket, with mode' },
    ],
    doc: 'Status page, /metrics and /api/* on "host:port" (loopback unless you mean it) or "unix:PATH"',
  },
  token: {
    kind: 'string',
    pattern: '^[\\x21-\\x7e]{8,4096}$',
    doc: 'Write calls need "Authorization: Bearer TOKEN" (8-4096 printable ASCII characters)',
  },
  read_token: {
    kind: 'string',
    pattern: '^[\\x21-\\x7e]{8,4096}$',
    doc: 'With token set: GET /api/* and /metrics need "Authorization: Bearer READ_TOKEN" (or the token)',
  },
  mode: {
    kind: 'string',
    pattern: '^0?[0-7]{3}$',
    doc: 'With listen = "unix:PATH": the socket file\'s permissions, e.g. "0660" (default "0600")',
  },
  allowed_hosts: {
    kind: 'list',
    items: { kind: 'string', doc: '"name:port", "[v6]:port" or a bare "name"' },
    doc: 'Host header values served besides the listen address and loopback names',
  },
} satisfies Fields;

const ADMIN_KEYS = keysOf(ADMIN_FIELDS);

/**
 * A bearer token (admin.token, admin.read_token): printable ASCII only, as a
 * header cannot carry control characters, and non-ASCII reaches Node as
 * latin1, so no client could ever send a matching token.
 */
function bearerToken(v: unknown, path: string, p: Problems): string | null {
  if (v === undefined) return null;
  if (typeof v === 'string' && /^[\x21-\x7e]{8,4096}$/.test(v)) return v;
  p.add(
    path,
    'expected 8-4096 printable ASCII characters (no spaces, control or non-ASCII characters)',
  );
  return null;
}

/** The [admin] table, or null when there is none. */
export function parseAdmin(v: unknown, p: Problems, opts: ParseOptions): Config['admin'] {
  const a = knownTable(v, ADMIN_KEYS, 'admin', p);
  if (a === null) return null;
  if (a.listen === undefined)
    p.add('admin.listen', 'missing; [admin] needs listen = "127.0.0.1:9900"');
  const hp =
    a.listen === undefined
      ? undefined
      : adminListen(a.listen, a.mode, p, opts.allowEphemeralListen ? 0 : 1, opts.baseDir);
  const token = bearerToken(a.token, 'admin.token', p);
  const readToken = bearerToken(a.read_token, 'admin.read_token', p);
  if (readToken !== null && token === null)
    p.add(
      'admin.read_token',
      'needs admin.token as well: without it, writes would be open while reads are not',
    );
  if (readToken !== null && readToken === token)
    p.add('admin.read_token', 'must differ from admin.token (it grants reads only)');
  // Written as a browser writes Host: "name:port", or a bare "name" behind port 80.
  const allowedHosts: string[] = [];
  if (a.allowed_hosts !== undefined && !Array.isArray(a.allowed_hosts)) {
    p.add(
      'admin.allowed_hosts',
      `expected an array such as ["lb.internal:9900"], got ${describe(a.allowed_hosts)}`,
    );
  }
  (Array.isArray(a.allowed_hosts) ? a.allowed_hosts : []).forEach((h: unknown, i) => {
    const full = parseHostPort(h);
    const bare = typeof h === 'string' ? parseHostPort(`${h}:80`) : full;
    if (!('error' in full)) allowedHosts.push(full.address.toLowerCase());
    // The ":80" added only to parse a bare name goes again.
    else if (!('error' in bare)) allowedHosts.push(bare.address.slice(0, -3).toLowerCase());
    else
      p.add(
        `admin.allowed_hosts[${i}]`,
        `expected "name:port", "[v6]:port" or a bare "name" as a browser sends Host, got ${describe(h)}`,
      );
  });
  if (!hp) return null;
  return Object.freeze({
    listen: hp,
    token,
    readToken,
    allowedHosts: Object.freeze(allowedHosts),
  });
}
