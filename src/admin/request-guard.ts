import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { readCapped } from '../capped-body.js';
import { isLoopback } from '../config/address.js';
import { type AdminListen, isUnixListen } from '../config/admin.js';
import type { Logger } from '../logger.js';
import { clientKey } from '../proxy/ip-text.js';

/**
 * What one admin port may hold. Every connection is a descriptor the balancer
 * needs for clients, backends and probes, so the admin server takes few and
 * lets go of silent or slow ones within seconds. Node checks the header and
 * request deadlines every `checkIntervalMs` (30 s by default, too late here).
 */
export const ADMIN_LIMITS = Object.freeze({
  /** Open connections; past this, new ones are closed at accept. The status page keeps a few. */
  maxConnections: 64,
  /** From connect (or the end of the last response) to the end of the request headers. */
  headersTimeoutMs: 5_000,
  /** From the first byte to the end of the request body. */
  requestTimeoutMs: 10_000,
  /** An idle keep-alive connection between requests (the status page polls every second). */
  keepAliveTimeoutMs: 5_000,
  /** No byte either way, e.g. a client that stops reading its response. */
  idleTimeoutMs: 10_000,
  checkIntervalMs: 1_000,
  /** A write call's body (a weight is a few bytes). */
  maxBodyBytes: 4096,
  /** A larger body is still read and dropped up to this, so the 413 is seen instead of a reset. */
  maxDrainBytes: 1 << 20,
});

/** Distinct refused Host values logged at warn; past this, refusals are only answered. */
const MAX_WARNED_HOSTS = 32;

/** An answer with a status: the admin server sends it as `{"error": message}`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

/**
 * Who may call the admin server and how: the Host it is called by (DNS
 * rebinding), where a write comes from (cross-site requests), its content
 * type and its bearer token.
 */
export class RequestGuard {
  /** The token's digest: tokens are compared as digests so neither content nor length leaks through timing. */
  private readonly tokenDigest: Buffer | null;
  /** read_token's digest: when set, reads need it (or the write token). */
  private readonly readDigest: Buffer | null;
  private readonly allowedHosts: ReadonlySet<string>;
  private readonly warnedHosts = new Set<string>();

  constructor(
    private readonly listen: AdminListen,
    token: string | null,
    allowedHosts: readonly string[],
    /** The bound port (the listen port may be 0). */
    private readonly port: () => number,
    private readonly log: Logger,
    readToken: string | null = null,
  ) {
    this.tokenDigest = token === null ? null : digest(token);
    this.readDigest = readToken === null ? null : digest(readToken);
    this.allowedHosts = new Set(allowedHosts.map((h) => h.toLowerCase()));
  }

  /**
   * The Host header, lowercased, when it names this server; null when absent.
   * A DNS-rebinding page reaches us under its own name, so only names that
   * cannot be an attacker's pass: the listen address, the address the
   * connection came in on (for a wildcard listen), loopback names (any port:
   * an SSH tunnel's), and the operator's allowed_hosts. No browser omits Host,
   * so its absence (HTTP/1.0 health checkers) is not a rebinding.
   */
  checkHost(req: IncomingMessage): string | null {
    const raw = req.headers.host;
    if (raw === undefined) return null;
    const value = raw.toLowerCase();
    // No browser reaches a Unix socket, so no page can rebind a name to it: any Host will do.
    if (this.allowedHosts.has(value) || isUnixListen(this.listen)) return value;
    const h = splitHost(value);
    if (h) {
      const { host: listenHost } = this.listen;
      const { localAddress, localPort } = req.socket;
      if (isLoopback(h.host)) return value;
      if (h.host === listenHost.toLowerCase() && h.port === this.port()) return value;
      if (localAddress && h.host === clientKey(localAddress).toLowerCase() && h.port === localPort)
        return value;
    }
    if (this.warnedHosts.size < MAX_WARNED_HOSTS && !this.warnedHosts.has(value)) {
      this.warnedHosts.add(value);
      this.log.warn({ host: raw }, 'admin: refused a request for another Host (allowed_hosts)');
    }
    throw new HttpError(
      403,
      `Host ${JSON.stringify(raw)} is not this admin server's name; add it to [admin] allowed_hosts`,
    );
  }

  /**
   * Checks a write call, cheapest refusal first, and returns its body. Without
   * a token a browser is the operator's credential, so a page from another
   * origin must not be able to act through it: its Origin is refused, and
   * requiring application/json means a plain form cannot send a write at all
   * (a cross-origin JSON fetch needs a CORS preflight, which is never granted).
   * A write without Origin is not from a browser (curl, scripts).
   */
  async acceptWrite(req: IncomingMessage, host: string | null): Promise<string> {
    const origin = req.headers.origin;
    if (origin !== undefined && (host === null || origin.toLowerCase() !== `http://${host}`))
      throw new HttpError(403, `cross-origin write refused (Origin ${origin})`);
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    if (type !== 'application/json')
      throw new HttpError(415, 'write calls need Content-Type: application/json');
    this.authorize(req);
    return readBody(req);
  }

  /** With a read_token, a read needs it or the write token; without one, reads are open. */
  acceptRead(req: IncomingMessage): void {
    if (this.readDigest === null) return;
    const given = digest(bearer(req));
    // Both compared, always: which one matched must not show in the timing either.
    const asRead = timingSafeEqual(given, this.readDigest);
    const asWrite = this.tokenDigest !== null && timingSafeEqual(given, this.tokenDigest);
    if (!asRead && !asWrite) throw unauthorized('reads need the bearer read_token (or token)');
  }

  private authorize(req: IncomingMessage): void {
    if (this.tokenDigest === null) return;
    if (!timingSafeEqual(digest(bearer(req)), this.tokenDigest))
      throw unauthorized('missing or wrong bearer token');
  }
}

/** The bearer token of a request ('' when none). RFC 7235: the scheme is case-insensitive. */
function bearer(req: IncomingMessage): string {
  return /^bearer +(\S+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? '';
}

function unauthorized(message: string): HttpError {
  return new HttpError(401, message, { 'www-authenticate': 'Bearer' });
}

/** The request target (origin or absolute form) as a URL; 400 when it does not parse. */
export function requestUrl(target: string | undefined): URL {
  try {
    return new URL(target ?? '/', 'http://admin');
  } catch {
    throw new HttpError(400, 'bad request target');
  }
}

/** One percent-encoded path segment; 400 for bad encoding such as "%ff" or a lone "%". */
export function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, `bad percent-encoding in ${JSON.stringify(segment)}`);
  }
}

/** "host", "host:port" or "[v6]:port" (lowercase) as host and port, the port 80 when absent. */
function splitHost(value: string): { host: string; port: number } | null {
  const m = /^(?:\[([0-9a-f:.]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/.exec(value);
  if (!m) return null;
  return { host: (m[1] ?? m[2]) as string, port: m[3] === undefined ? 80 : Number(m[3]) };
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/**
 * Reads a write call's body, up to maxBodyBytes. A larger one is refused 413,
 * but read to its end first (up to maxDrainBytes): closing a socket with
 * unread bytes sends a reset, and the client would see that, not the 413.
 */
export function readBody(req: IncomingMessage): Promise<string> {
  const { maxBodyBytes, maxDrainBytes } = ADMIN_LIMITS;
  const tooLarge = (close: boolean): HttpError =>
    new HttpError(413, `body over ${maxBodyBytes} bytes`, close ? { connection: 'close' } : {});
  if (Number(req.headers['content-length'] ?? 0) > maxDrainBytes)
    return Promise.reject(tooLarge(true));
  return readCapped(req, {
    keep: maxBodyBytes,
    stopAt: maxDrainBytes,
    over: () => tooLarge(true),
    cut: (err) => err ?? new HttpError(400, 'request body cut short'),
  }).then(({ text, size }) => (size > maxBodyBytes ? Promise.reject(tooLarge(false)) : text));
}
