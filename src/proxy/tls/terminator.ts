import type { Socket } from 'node:net';
import { createServer, type SecureContext, type Server, type TLSSocket } from 'node:tls';
import { sameConfig } from '../../config/same.js';
import type { TlsConfig } from '../../config/schema.js';
import type { Logger } from '../../logger.js';
import {
  CertificateError,
  groupsOption,
  type LoadedTls,
  loadTls,
  pairFor,
} from './certificates.js';

/** Why a handshake failed: a fixed set, counted per service. */
export type HandshakeFailure =
  | 'timeout'
  | 'closed'
  | 'not-tls'
  | 'version'
  | 'cipher'
  | 'alpn'
  | 'client-cert'
  | 'other';

/** What a handshake was for: handed back with the TLS socket. */
export type HandshakeDone<C> = (ctx: C, sock: TLSSocket) => void;

/** The client the raw socket became (Node's TLSSocket keeps it as `_parent`). */
interface Wrapped {
  _parent?: Socket;
}

const CTX = Symbol('handshake');
interface Tagged<C> {
  [CTX]?: C;
}

/** Maps a handshake error to its counted cause; never the message, which is OpenSSL's. */
export function failureOf(err: NodeJS.ErrnoException): HandshakeFailure {
  const code = err.code ?? '';
  if (code === 'ERR_TLS_HANDSHAKE_TIMEOUT') return 'timeout';
  if (code === 'ECONNRESET' || code === 'EPIPE') return 'closed';
  if (/HTTP_REQUEST|WRONG_VERSION_NUMBER|UNKNOWN_PROTOCOL|RECORD_LENGTH|PACKET_LENGTH/.test(code))
    return 'not-tls';
  if (/VERSION|PROTOCOL/.test(code)) return 'version';
  if (/CIPHER/.test(code)) return 'cipher';
  if (/APPLICATION_PROTOCOL|ALPN/.test(code)) return 'alpn';
  if (/CERTIFICATE|CERT_|PEER_DID_NOT_RETURN/.test(code)) return 'client-cert';
  return 'other';
}

/**
 * One service's TLS termination: a node:tls Server that never listens, fed
 * the service's accepted sockets (`server.emit('connection')`), so one
 * listener can peek a hello and then terminate. Certificates are re-read on
 * every reload: the new ones take new handshakes (setSecureContext, or a new
 * Server when the handshake settings changed), open sessions keep theirs,
 * and files that fail to load leave the old ones in force.
 */
export class TlsTerminator<C> {
  /** Handshake failures by cause: plain numbers, read by metrics. */
  readonly failures: Record<HandshakeFailure, number> = {
    timeout: 0,
    closed: 0,
    'not-tls': 0,
    version: 0,
    cipher: 0,
    alpn: 0,
    'client-cert': 0,
    other: 0,
  };
  private server: Server;
  private cfg: TlsConfig;
  private loaded: LoadedTls;

  /** Throws CertificateError when a file is missing or wrong. */
  constructor(
    cfg: TlsConfig,
    private helloTimeoutMs: number,
    private readonly done: HandshakeDone<C>,
    private readonly failed: (ctx: C, cause: HandshakeFailure) => void,
    private readonly log: Logger,
  ) {
    this.cfg = cfg;
    this.loaded = loadTls(cfg);
    this.server = this.createServer();
  }

  private createServer(): Server {
    const { cfg, loaded } = this;
    const first = loaded.pairs[0];
    const multi = loaded.pairs.length > 1;
    const server = createServer({
      cert: first?.cert,
      key: first?.key,
      minVersion: cfg.minVersion,
      ...(loaded.clientCa ? { ca: loaded.clientCa } : {}),
      ...groupsOption(cfg),
      requestCert: cfg.verifyClient !== 'none',
      // Checked in onSecure, so a refused client certificate is counted like any failure.
      rejectUnauthorized: false,
      ...(cfg.alpn ? { ALPNProtocols: [...cfg.alpn] } : {}),
      handshakeTimeout: this.helloTimeoutMs,
      allowHalfOpen: true,
      ...(multi
        ? {
            SNICallback: (name: string, cb: (err: Error | null, ctx?: SecureContext) => void) =>
              cb(null, this.contextFor(name)),
          }
        : {}),
    });
    server.on('secureConnection', (sock: TLSSocket) => this.onSecure(sock));
    server.on('tlsClientError', (err: NodeJS.ErrnoException, sock: TLSSocket) =>
      this.onFailed(err, sock),
    );
    return server;
  }

  /** The certificates in force. */
  get pairs(): LoadedTls['pairs'] {
    return this.loaded.pairs;
  }

  private contextFor(name: string): SecureContext {
    return pairFor(this.loaded.pairs, name).context;
  }

  /** Starts the handshake on a socket accepted paused (the bytes read so far put back). */
  handshake(raw: Socket, ctx: C): void {
    (raw as Tagged<C>)[CTX] = ctx;
    // Not while the handshake runs (the TLS socket takes it from the raw one): a client that
    // sends its FIN mid-handshake is closed at once (a tlsClientError, cause "closed"), not
    // held until hello_timeout. A session's half-close is on purpose: onSecure turns it back on.
    raw.allowHalfOpen = false;
    this.server.emit('connection', raw);
  }

  private ctxOf(sock: TLSSocket): C | undefined {
    const raw = (sock as Wrapped)._parent;
    return raw ? (raw as Tagged<C>)[CTX] : undefined;
  }

  private onSecure(sock: TLSSocket): void {
    // Read by the stream at its end: from here a FIN is the session's half-close.
    sock.allowHalfOpen = true;
    const ctx = this.ctxOf(sock);
    if (ctx === undefined) {
      sock.destroy();
      return;
    }
    const verify = this.cfg.verifyClient;
    if (verify !== 'none' && !sock.authorized) {
      // "optional": no certificate is fine, one that does not verify is not (as nginx and HAProxy do).
      const presented = sock.getPeerX509Certificate() !== undefined;
      if (verify === 'required' || presented) {
        this.failures['client-cert']++;
        this.log.debug({ reason: sock.authorizationError }, 'TLS client certificate refused');
        sock.destroy();
        this.failed(ctx, 'client-cert');
        return;
      }
    }
    sock.pause();
    this.done(ctx, sock);
  }

  private onFailed(err: NodeJS.ErrnoException, sock: TLSSocket): void {
    const cause = failureOf(err);
    this.failures[cause]++;
    this.log.debug({ cause, code: err.code }, 'TLS handshake failed');
    sock.destroy();
    const ctx = this.ctxOf(sock);
    if (ctx !== undefined) this.failed(ctx, cause);
  }

  /**
   * Re-reads the files (a reload, changed config or not: a renewed
   * certificate keeps its file name). Returns the error when they fail to
   * load; the old ones then stay in force.
   */
  reload(cfg: TlsConfig, helloTimeoutMs: number): CertificateError | null {
    let loaded: LoadedTls;
    try {
      loaded = loadTls(cfg);
    } catch (err) {
      if (err instanceof CertificateError) return err;
      throw err;
    }
    const sameSettings = sameConfig(
      { ...cfg, certificates: cfg.certificates.length > 1 },
      { ...this.cfg, certificates: this.cfg.certificates.length > 1 },
    );
    this.cfg = cfg;
    this.loaded = loaded;
    if (sameSettings && helloTimeoutMs === this.helloTimeoutMs) {
      const first = loaded.pairs[0];
      this.server.setSecureContext({
        cert: first?.cert,
        key: first?.key,
        minVersion: cfg.minVersion,
        ...(loaded.clientCa ? { ca: loaded.clientCa } : {}),
        ...groupsOption(cfg),
      });
    } else {
      // Handshakes under way finish on the old server; its listeners stay.
      this.helloTimeoutMs = helloTimeoutMs;
      this.server = this.createServer();
    }
    return null;
  }
}
