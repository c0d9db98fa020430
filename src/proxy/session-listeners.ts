import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';

/**
 * What the shared listeners reach on a session (proxy/session.ts's Session
 * implements it): declared here, so this file and session.ts do not import
 * each other.
 */
export interface SessionSockets {
  readonly client: Socket;
  readonly backend: Socket | null;
  /** A chunk came from the client (the backend) since the idle sweep last looked. */
  clientBusy: boolean;
  backendBusy: boolean;
  /** Its bandwidth limits (proxy/bandwidth.ts); null, the common case, when it has none. */
  readonly shaper: { readonly upPaused: boolean; readonly downPaused: boolean } | null;
  onClientEnd(): void;
  onBackendEnd(): void;
  onClientError(): void;
  onBackendError(): void;
  onClientClose(hadError: boolean): void;
  onBackendClose(hadError: boolean): void;
}

/** Where a session's sockets keep their session: see `tag`. */
const SESSION = Symbol('session');

/** A socket of a session, which it can be found by: how the shared listeners below find theirs. */
interface Owned {
  [SESSION]?: SessionSockets;
}

/** Marks `sock` as a leg of `s`, so the shared listeners below find it. */
export function tag(sock: Socket, s: SessionSockets): void {
  (sock as Owned)[SESSION] = s;
}

/** The session `sock` is a leg of (see `tag`). */
export function owner(sock: Socket): SessionSockets {
  return (sock as Owned)[SESSION] as SessionSockets;
}

// Listeners shared by every session: each finds its session through the socket it fires
// on, so a session allocates no closures. Eleven binds and six once-wrappers a session
// were 1.5 KiB of its 5.4 KiB of heap (a heap snapshot diff over 3,000 idle sessions).

/** Client bytes to the backend; a full backend buffer pauses the client until 'drain'. */
export function clientData(this: Socket, chunk: Buffer): void {
  const s = owner(this);
  s.clientBusy = true;
  if (!(s.backend as Socket).write(chunk)) this.pause();
}

export function backendData(this: Socket, chunk: Buffer): void {
  const s = owner(this);
  s.backendBusy = true;
  if (!s.client.write(chunk)) this.pause();
}

/** The backend took what was queued: read the client again, unless its upload limit holds it. */
export function backendDrain(this: Socket): void {
  const s = owner(this);
  if (s.shaper === null || !s.shaper.upPaused) s.client.resume();
}

export function clientDrain(this: Socket): void {
  const s = owner(this);
  if (s.shaper === null || !s.shaper.downPaused) s.backend?.resume();
}

export function clientEnd(this: Socket): void {
  owner(this).onClientEnd();
}

export function backendEnd(this: Socket): void {
  owner(this).onBackendEnd();
}

export function clientError(this: Socket): void {
  owner(this).onClientError();
}

export function backendError(this: Socket): void {
  owner(this).onBackendError();
}

export function clientClose(this: Socket, hadError: boolean): void {
  owner(this).onClientClose(hadError);
}

export function backendClose(this: Socket, hadError: boolean): void {
  owner(this).onBackendClose(hadError);
}

/**
 * Passes a FIN on. A plain TCP socket whose peer has sent its own FIN, with
 * nothing of ours left unwritten, is closed outright: close() sends the FIN as
 * shutdown() would (the kernel still delivers what it buffered), and the socket
 * would close right after anyway, so a syscall is saved (strace -c under churn:
 * two shutdown() per connection, against HAProxy's 0.09). A TLS socket always
 * ends, so its close_notify is sent.
 */
export function passFin(sock: Socket): void {
  if (sock.readableEnded && sock.writableLength === 0 && !(sock as TLSSocket).encrypted)
    sock.destroy();
  else sock.end();
}

/**
 * Closes a socket with a reset, so the peer sees an abort rather than a clean
 * end. Once our side has sent its FIN, libuv refuses the reset (EINVAL while
 * shutting down) and Node then never closes the handle: the descriptor leaks
 * and 'close' never fires. Found by the random-churn fault test. Such a socket
 * gets a plain destroy. So does a TLS socket (backend_tls), whose handle Node
 * cannot reset (it throws ERR_INVALID_HANDLE_TYPE): closed without a
 * close_notify, its peer still sees a truncation, not a clean end.
 */
export function abort(sock: Socket): void {
  if (sock.destroyed) return;
  if (sock.writableEnded || sock.connecting || (sock as TLSSocket).encrypted) sock.destroy();
  else sock.resetAndDestroy();
}
