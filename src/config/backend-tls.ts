import { isIP } from 'node:net';
import { createSecureContext } from 'node:tls';
import { describe } from './duration.js';
import { boolean, oneOf, optionalTable, type Problems } from './fields.js';
import { type PemFile, parseCerts, parseKey, readPem } from './pem.js';
import { type Fields, keysOf } from './spec.js';

export const TLS_VERSIONS = ['TLSv1.2', 'TLSv1.3'] as const;
export type TlsVersion = (typeof TLS_VERSIONS)[number];

/** `[services.NAME.backend_tls]`: the balancer speaks TLS to this service's backends. */
export interface BackendTlsConfig {
  /** CA bundle to verify backends against; null: the system store (Node's bundled roots). */
  readonly ca: PemFile | null;
  /** Client certificate and key, for backends that require one (mTLS); both or neither. */
  readonly cert: PemFile | null;
  readonly key: PemFile | null;
  /** SNI name and the name verified; null: the backend's host name (no SNI for an IP address). */
  readonly servername: string | null;
  readonly alpn: readonly string[];
  readonly minVersion: TlsVersion;
  /** false only when written so: the backend's certificate is not checked at all. */
  readonly verify: boolean;
}

/** [services.NAME.backend_tls]. */
export const BACKEND_TLS_FIELDS = {
  ca: {
    kind: 'string',
    minLength: 1,
    doc: 'PEM CA bundle to verify backends against (default: the system store)',
  },
  servername: {
    kind: 'string',
    doc: "SNI name and the name verified (default: the backend's host name)",
  },
  cert: {
    kind: 'string',
    minLength: 1,
    doc: 'Client certificate (PEM) for backends that require one',
  },
  key: { kind: 'string', minLength: 1, doc: 'Private key (PEM) of the client certificate' },
  alpn: {
    kind: 'list',
    items: { kind: 'string', doc: 'A protocol name such as "h2"' },
    doc: 'Protocols offered to backends by ALPN',
  },
  min_version: {
    kind: 'enum',
    values: TLS_VERSIONS,
    default: 'TLSv1.2',
    doc: 'The oldest TLS version accepted from a backend',
  },
  verify: {
    kind: 'boolean',
    default: true,
    doc: 'false: backend certificates are not checked at all (check warns)',
  },
} satisfies Fields;
export const BACKEND_TLS_KEYS = keysOf(BACKEND_TLS_FIELDS);

const HOST_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_][A-Za-z0-9_-]{0,62})*\.?$/;

function servername(v: unknown, path: string, p: Problems): string | null {
  if (v === undefined) return null;
  if (typeof v === 'string' && isIP(v) !== 0) {
    p.add(
      path,
      `an IP address cannot be a TLS server name (RFC 6066); leave servername out to verify the backend by its address`,
    );
    return null;
  }
  if (typeof v !== 'string' || !HOST_NAME.test(v)) {
    p.add(path, `expected a DNS name such as "api.internal", got ${describe(v)}`);
    return null;
  }
  return v.toLowerCase();
}

function alpnList(v: unknown, path: string, p: Problems): readonly string[] {
  if (v === undefined) return Object.freeze([]);
  if (!Array.isArray(v)) {
    p.add(
      path,
      `expected an array of protocol names such as ["h2", "http/1.1"], got ${describe(v)}`,
    );
    return Object.freeze([]);
  }
  const out: string[] = [];
  v.forEach((x, i) => {
    if (typeof x !== 'string' || !/^[\x21-\x7e]{1,255}$/.test(x))
      p.add(`${path}[${i}]`, `expected a protocol name such as "h2", got ${describe(x)}`);
    else out.push(x);
  });
  return Object.freeze(out);
}

/**
 * Validates `[services.NAME.backend_tls]` and reads its files, so that a
 * missing file, a PEM that does not parse or a key that does not match its
 * certificate is a config error at `check` and at reload, never a dial failure.
 */
export const parseBackendTls = optionalTable(
  BACKEND_TLS_KEYS,
  (t, path, p, baseDir: string): BackendTlsConfig => {
    const before = p.list.length;
    const ca = readPem(t.ca, `${path}.ca`, baseDir, p);
    const cert = readPem(t.cert, `${path}.cert`, baseDir, p);
    const key = readPem(t.key, `${path}.key`, baseDir, p);
    if (ca) parseCerts(ca, `${path}.ca`, p);
    if ((t.cert === undefined) !== (t.key === undefined)) {
      const missing = t.cert === undefined ? 'cert' : 'key';
      p.add(`${path}.${missing}`, 'missing; a client certificate needs both cert and key');
    }
    if (cert && key) {
      const [leaf] = parseCerts(cert, `${path}.cert`, p);
      const pk = parseKey(key, `${path}.key`, p);
      if (leaf && pk && !leaf.checkPrivateKey(pk))
        p.add(
          `${path}.key`,
          `${key.file} is not the private key of the certificate in ${cert.file}`,
        );
    }
    const cfg: BackendTlsConfig = {
      ca,
      cert,
      key,
      servername: servername(t.servername, `${path}.servername`, p),
      alpn: alpnList(t.alpn, `${path}.alpn`, p),
      minVersion: oneOf(t.min_version, `${path}.min_version`, 'TLSv1.2', TLS_VERSIONS, p),
      verify: boolean(t.verify, `${path}.verify`, true, p),
    };
    if (p.list.length === before) {
      // Whatever the checks above missed, OpenSSL says now rather than at the first dial.
      try {
        createSecureContext(secureContextOptions(cfg));
      } catch (err) {
        p.add(path, `OpenSSL rejects these settings: ${(err as Error).message}`);
      }
    }
    return Object.freeze(cfg);
  },
);

/** The options of `tls.createSecureContext` for this config (the one place they are built). */
export function secureContextOptions(c: BackendTlsConfig): {
  ca?: string;
  cert?: string;
  key?: string;
  minVersion: TlsVersion;
} {
  return {
    ...(c.ca ? { ca: c.ca.pem } : {}),
    ...(c.cert && c.key ? { cert: c.cert.pem, key: c.key.pem } : {}),
    minVersion: c.minVersion,
  };
}
