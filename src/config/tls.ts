import { isAbsolute, resolve } from 'node:path';
import { describe } from './duration.js';
import { checkKeys, oneOf, optionalTable, type Problems, table } from './fields.js';
import { type Fields, keysOf, listOf, type StringSpec } from './spec.js';

export const TLS_VERSIONS = ['TLSv1.2', 'TLSv1.3'] as const;
export const VERIFY_CLIENT = ['none', 'optional', 'required'] as const;

/** One certificate and its private key, as PEM file paths (absolute once validated). */
export interface TlsCertPair {
  readonly cert: string;
  readonly key: string;
  /**
   * Where it was written in the tls table, for messages: "" (cert, key) or "certificates[1]".
   * Not enumerable: where a pair was written is no part of the config's value (equality,
   * reload's comparisons, `check --print` see only cert and key).
   */
  readonly from?: string;
}

/** [services.NAME.tls]: the balancer terminates TLS and the backend gets plain TCP. */
export interface TlsConfig {
  /** The first pair is the default; the others are chosen by the client's server name. */
  readonly certificates: readonly TlsCertPair[];
  /** Protocols offered by ALPN, in the server's order of preference (null: no ALPN). */
  readonly alpn: readonly string[] | null;
  readonly minVersion: (typeof TLS_VERSIONS)[number];
  /** PEM file of the CAs a client certificate must chain to. */
  readonly clientCa: string | null;
  readonly verifyClient: (typeof VERIFY_CLIENT)[number];
  /** Key exchange groups offered, in order of preference (null: the runtime OpenSSL's defaults). */
  readonly groups: readonly string[] | null;
}

const PAIR_FIELDS = {
  cert: {
    kind: 'string',
    minLength: 1,
    doc: 'PEM certificate file (relative: to the config file)',
    required: true,
  },
  key: {
    kind: 'string',
    minLength: 1,
    doc: 'PEM private key file of that certificate',
    required: true,
  },
} satisfies Fields;
const PAIR_KEYS = keysOf(PAIR_FIELDS);

/** One ALPN protocol name, as tls.alpn, sni's alpn and a route's alpn take them. */
export const ALPN_PROTOCOL: StringSpec = { kind: 'string', doc: 'A protocol name such as "h2"' };

/** [services.NAME.tls]. */
export const TLS_FIELDS = {
  cert: {
    kind: 'string',
    minLength: 1,
    doc: 'PEM certificate file (relative: to the config file); the default certificate',
  },
  key: { kind: 'string', minLength: 1, doc: 'PEM private key file of cert' },
  certificates: listOf(
    { kind: 'table', fields: PAIR_FIELDS, doc: 'A certificate and its key' },
    "More pairs, chosen by the client's server name (the first is the default when cert is absent)",
  ),
  alpn: listOf(ALPN_PROTOCOL, 'Protocols offered by ALPN, in order of preference'),
  min_version: {
    kind: 'enum',
    values: TLS_VERSIONS,
    default: 'TLSv1.2',
    doc: 'The oldest TLS version accepted',
  },
  client_ca: {
    kind: 'string',
    minLength: 1,
    doc: 'PEM file of the CAs a client certificate must chain to',
  },
  verify_client: {
    kind: 'enum',
    values: VERIFY_CLIENT,
    doc: 'Client certificates: none | optional | required (default: required with client_ca, else none)',
  },
  groups: listOf(
    { kind: 'string', doc: 'An OpenSSL group name such as "X25519" or "P-256"' },
    "Key exchange groups, in order of preference (default: the runtime OpenSSL's, on Node 24 the post-quantum hybrid X25519MLKEM768 first)",
  ),
} satisfies Fields;
const TLS_KEYS = keysOf(TLS_FIELDS);

function filePath(v: unknown, path: string, p: Problems, baseDir: string | undefined): string {
  if (typeof v !== 'string' || v.length === 0 || v.includes('\0')) {
    p.add(path, `expected a file path, got ${describe(v)}`);
    return '';
  }
  return baseDir && !isAbsolute(v) ? resolve(baseDir, v) : v;
}

/** How one kind of name in a list is spelled, and the examples its errors give. */
interface NameKind {
  readonly pattern: RegExp;
  /** "a protocol name such as \"h2\"" */
  readonly one: string;
  /** '["h2", "http/1.1"]' */
  readonly many: string;
}

/** A non-empty list of distinct names of one kind; null when absent. */
function nameList(v: unknown, path: string, p: Problems, k: NameKind): readonly string[] | null {
  if (v === undefined) return null;
  if (!Array.isArray(v) || v.length === 0) {
    p.add(path, `expected a non-empty array such as ${k.many}, got ${describe(v)}`);
    return null;
  }
  const out: string[] = [];
  v.forEach((x, i) => {
    if (typeof x !== 'string' || !k.pattern.test(x))
      p.add(`${path}[${i}]`, `expected ${k.one}, got ${describe(x)}`);
    else if (out.includes(x)) p.add(`${path}[${i}]`, `"${x}" is listed twice`);
    else out.push(x);
  });
  return Object.freeze(out);
}

/** ALPN protocol names ("h2", "http/1.1"): 1-255 printable ASCII characters each. */
const ALPN_NAMES: NameKind = {
  pattern: /^[\x21-\x7e]{1,255}$/,
  one: 'a protocol name such as "h2"',
  many: '["h2", "http/1.1"]',
};

/**
 * Key exchange group names ("X25519", "P-256", "X25519MLKEM768"): their
 * spelling here; whether the runtime's OpenSSL knows them is checked when the
 * certificates are loaded (proxy/tls/certificates.ts), as `check` does.
 */
const GROUP_NAMES: NameKind = {
  pattern: /^[A-Za-z0-9_-]{1,64}$/,
  one: 'a group name such as "X25519"',
  many: '["X25519", "P-256"]',
};

/** A list of ALPN protocol names. */
export function alpnList(v: unknown, path: string, p: Problems): readonly string[] | null {
  return nameList(v, path, p, ALPN_NAMES);
}

function groupList(v: unknown, path: string, p: Problems): readonly string[] | null {
  return nameList(v, path, p, GROUP_NAMES);
}

/** A pair that knows where it was written (TlsCertPair.from), without that being part of its value. */
function written(pair: TlsCertPair, from: string): TlsCertPair {
  return Object.defineProperty(pair, 'from', { value: from, enumerable: false });
}

/**
 * [services.NAME.tls]. Paths are taken relative to the config file's folder.
 * The files are read at start, at each reload and by `check`
 * (proxy/tls/certificates.ts), never here: validation stays pure.
 */
export const parseTls = optionalTable(
  TLS_KEYS,
  (t, path, p, baseDir: string | undefined): TlsConfig => {
    const certificates: TlsCertPair[] = [];
    if (t.cert !== undefined || t.key !== undefined) {
      if (t.cert === undefined || t.key === undefined)
        p.add(path, 'cert and key go together: a certificate needs its private key');
      else
        certificates.push(
          written(
            {
              cert: filePath(t.cert, `${path}.cert`, p, baseDir),
              key: filePath(t.key, `${path}.key`, p, baseDir),
            },
            '',
          ),
        );
    }
    if (t.certificates !== undefined) {
      if (!Array.isArray(t.certificates) || t.certificates.length === 0)
        p.add(
          `${path}.certificates`,
          `expected an array such as [{ cert = "a.pem", key = "a.key" }], got ${describe(t.certificates)}`,
        );
      else
        t.certificates.forEach((c, i) => {
          const at = `${path}.certificates[${i}]`;
          const pair = table(c, at, p);
          checkKeys(pair, PAIR_KEYS, at, p);
          if (pair.cert === undefined || pair.key === undefined) {
            p.add(at, 'needs both cert and key');
            return;
          }
          certificates.push(
            written(
              {
                cert: filePath(pair.cert, `${at}.cert`, p, baseDir),
                key: filePath(pair.key, `${at}.key`, p, baseDir),
              },
              `certificates[${i}]`,
            ),
          );
        });
    }
    if (certificates.length === 0 && t.cert === undefined && t.key === undefined)
      p.add(
        path,
        'needs a certificate: cert = "server.pem" and key = "server.key" (or certificates = [...])',
      );
    const clientCa =
      t.client_ca === undefined ? null : filePath(t.client_ca, `${path}.client_ca`, p, baseDir);
    const verifyClient = oneOf(
      t.verify_client,
      `${path}.verify_client`,
      clientCa ? 'required' : 'none',
      VERIFY_CLIENT,
      p,
    );
    if (verifyClient !== 'none' && !clientCa)
      p.add(
        `${path}.client_ca`,
        `verify_client = "${verifyClient}" needs client_ca = "ca.pem" to verify against`,
      );
    return Object.freeze({
      groups: groupList(t.groups, `${path}.groups`, p),
      certificates: Object.freeze(certificates.map((c) => Object.freeze(c))),
      alpn: alpnList(t.alpn, `${path}.alpn`, p),
      minVersion: oneOf(t.min_version, `${path}.min_version`, 'TLSv1.2', TLS_VERSIONS, p),
      clientCa,
      verifyClient,
    });
  },
);
