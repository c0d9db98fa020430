import { isIP } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import { type BackendTlsConfig, secureContextOptions } from '../config/backend-tls.js';

/** Server names a backend may be dialled with (an SNI-routed client's own name); beyond, the cache restarts. */
const MAX_NAMES_PER_BACKEND = 64;

/**
 * One service's TLS to its backends, built from a validated config: the
 * secure context (CA, client certificate, minimum version), made once, and a
 * TLS session cache per backend, so a pool refill resumes instead of doing a
 * full handshake. A reload that changes backend_tls builds a new one (and a
 * new pool), so nothing made with old settings is reused.
 */
export class BackendTls {
  readonly context: SecureContext;
  readonly alpn: string[] | undefined;
  /** Keyed by the connect target (a Backend), so a removed backend's tickets go with it. */
  private readonly sessions = new WeakMap<object, Map<string, Buffer>>();

  constructor(readonly cfg: BackendTlsConfig) {
    this.context = createSecureContext(secureContextOptions(cfg));
    this.alpn = cfg.alpn.length > 0 ? [...cfg.alpn] : undefined;
  }

  get verify(): boolean {
    return this.cfg.verify;
  }

  /**
   * The name sent as SNI and verified: a dial's own (`override`), the
   * configured one, or the backend's host when it is a name. An IP address is
   * never sent as SNI (RFC 6066); the certificate is then checked against it.
   */
  servername(host: string, override: string | null): string | undefined {
    if (override !== null) return override;
    if (this.cfg.servername !== null) return this.cfg.servername;
    return isIP(host) === 0 ? host : undefined;
  }

  session(target: object, name: string | undefined): Buffer | undefined {
    return this.sessions.get(target)?.get(name ?? '');
  }

  remember(target: object, name: string | undefined, session: Buffer): void {
    let byName = this.sessions.get(target);
    if (!byName) {
      byName = new Map();
      this.sessions.set(target, byName);
    }
    if (byName.size >= MAX_NAMES_PER_BACKEND && !byName.has(name ?? '')) byName.clear();
    byName.set(name ?? '', session);
  }

  forget(target: object, name: string | undefined): void {
    this.sessions.get(target)?.delete(name ?? '');
  }
}
