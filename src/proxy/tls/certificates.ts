import { createPrivateKey, X509Certificate } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';
import { MAX_PEM_BYTES, readGuarded, refusalOf } from '../../config/guarded-file.js';
import type { TlsConfig } from '../../config/schema.js';
import type { TlsCertPair } from '../../config/tls.js';
import { LbError } from '../../errors.js';

/** A certificate and key read from their files, checked to belong together. */
export interface LoadedPair {
  readonly certFile: string;
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly x509: X509Certificate;
  readonly context: SecureContext;
}

/** Everything [tls] names, read: what a terminator is built from. */
export interface LoadedTls {
  readonly pairs: readonly LoadedPair[];
  readonly clientCa: Buffer | null;
}

/** A certificate, key or CA file that cannot be used: unreadable, not PEM, or a key of another certificate. */
export class CertificateError extends LbError {
  constructor(
    message: string,
    /** The key in the tls table that names the file ("cert", "certificates[1].key", "client_ca"), when one file is at fault. */
    readonly key: string | null = null,
  ) {
    super('LB_ERR_CONFIG', message);
  }
}

/** Where a CertificateError is in the config: `services.web.tls.cert`, or the table when no one key is at fault. */
export function certificateErrorAt(service: string, err: CertificateError): string {
  return `services.${service}.tls${err.key ? `.${err.key}` : ''}`;
}

/** Reads a file through the guarded reader (config/guarded-file.ts): never a FIFO, a device or more than 1 MiB. */
function read(file: string, what: string, key: string): Buffer {
  try {
    return readGuarded(file, MAX_PEM_BYTES);
  } catch (err) {
    throw new CertificateError(`${what} ${file}: cannot read it: ${refusalOf(err).why}`, key);
  }
}

function keyOf(c: TlsCertPair, which: 'cert' | 'key', i: number): string {
  const from = c.from ?? (i === 0 ? '' : `certificates[${i}]`);
  return from === '' ? which : `${from}.${which}`;
}

/**
 * Reads every file of a [tls] table and checks each key against its
 * certificate. Throws CertificateError naming the file and what is wrong.
 * Used at start, at every reload (new files in force only when all of them
 * are good) and by `check`.
 */
export function loadTls(cfg: TlsConfig, minVersion = cfg.minVersion): LoadedTls {
  const ecdh = groupsOption(cfg);
  let clientCa: Buffer | null = null;
  if (cfg.clientCa) {
    clientCa = read(cfg.clientCa, 'client_ca', 'client_ca');
    try {
      new X509Certificate(clientCa);
    } catch {
      throw new CertificateError(`client_ca ${cfg.clientCa}: not a PEM certificate`);
    }
  }
  const pairs = cfg.certificates.map((c, i): LoadedPair => {
    const cert = read(c.cert, 'certificate', keyOf(c, 'cert', i));
    const key = read(c.key, 'key', keyOf(c, 'key', i));
    let x509: X509Certificate;
    try {
      x509 = new X509Certificate(cert);
    } catch {
      throw new CertificateError(`certificate ${c.cert}: not a PEM certificate`);
    }
    let match: boolean;
    try {
      match = x509.checkPrivateKey(createPrivateKey(key));
    } catch {
      throw new CertificateError(`key ${c.key}: not a PEM private key (or it is encrypted)`);
    }
    if (!match) throw new CertificateError(`key ${c.key} does not match certificate ${c.cert}`);
    let context: SecureContext;
    try {
      // Each pair's context carries the client CA: with several pairs, SNICallback hands the
      // handshake this context, and client certificates are verified against its store.
      context = createSecureContext({
        cert,
        key,
        minVersion,
        ...(clientCa ? { ca: clientCa } : {}),
        ...ecdh,
      });
    } catch (err) {
      throw new CertificateError(`certificate ${c.cert}: ${(err as Error).message}`);
    }
    return { certFile: c.cert, cert, key, x509, context };
  });
  return { pairs, clientCa };
}

/**
 * node:tls's `ecdhCurve` for [tls] groups (absent: OpenSSL's default list).
 * Throws CertificateError naming `groups` when this runtime's OpenSSL does
 * not know one of them.
 */
export function groupsOption(cfg: TlsConfig): { ecdhCurve?: string } {
  if (!cfg.groups) return {};
  const ecdhCurve = cfg.groups.join(':');
  try {
    createSecureContext({ ecdhCurve });
  } catch {
    throw new CertificateError(
      `groups ${JSON.stringify(cfg.groups)}: this runtime's OpenSSL (${process.versions.openssl}) does not know one of them`,
      'groups',
    );
  }
  return { ecdhCurve };
}

/** The pair for a server name: the first whose certificate covers it, else the first (the default). */
export function pairFor(pairs: readonly LoadedPair[], name: string | undefined): LoadedPair {
  if (name && pairs.length > 1) for (const p of pairs) if (p.x509.checkHost(name)) return p;
  return pairs[0] as LoadedPair;
}

const DAY_MS = 86_400_000;

/** One line a certificate for `check`: its names and expiry, with a warning when expired or near. */
export function describeCertificate(
  p: LoadedPair,
  now = Date.now(),
): { line: string; problem: string | null } {
  const notAfter = new Date(p.x509.validTo);
  const days = Math.floor((notAfter.getTime() - now) / DAY_MS);
  const names = p.x509.subjectAltName ?? p.x509.subject;
  const when = notAfter.toISOString().slice(0, 10);
  const problem =
    notAfter.getTime() <= now
      ? `certificate ${p.certFile} EXPIRED on ${when}`
      : new Date(p.x509.validFrom).getTime() > now
        ? `certificate ${p.certFile} is not valid before ${new Date(p.x509.validFrom).toISOString()}`
        : null;
  const left = days < 30 && !problem ? ` (WARNING: expires in ${days} days)` : '';
  return { line: `${p.certFile}: ${names}; expires ${when}${left}`, problem };
}

/** What `check` (and `run`, before it starts) says about every [tls] table of a config. */
export interface CertificateReport {
  readonly lines: string[];
  /** Files that cannot be used: `run` refuses to start, `check` fails. */
  readonly errors: string[];
  /** Certificates expired or not yet valid: `check` fails, `run` warns and serves them. */
  readonly expired: string[];
}

export function certificateReport(
  services: readonly { readonly name: string; readonly tls: TlsConfig | null }[],
  source: string,
  now = Date.now(),
): CertificateReport {
  const r: CertificateReport = { lines: [], errors: [], expired: [] };
  for (const s of services) {
    if (!s.tls) continue;
    try {
      const loaded = loadTls(s.tls);
      for (const p of loaded.pairs) {
        const d = describeCertificate(p, now);
        r.lines.push(`  tls ${d.line}`);
        if (d.problem) r.expired.push(`${source}: services.${s.name}.tls: ${d.problem}`);
      }
      if (s.tls.clientCa)
        r.lines.push(`  tls client_ca ${s.tls.clientCa}, verify_client ${s.tls.verifyClient}`);
    } catch (err) {
      if (!(err instanceof CertificateError)) throw err;
      r.errors.push(`${source}: ${certificateErrorAt(s.name, err)}: ${err.message}`);
    }
  }
  return r;
}
