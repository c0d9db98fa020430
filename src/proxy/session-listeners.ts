import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { noop } from '../noop.js';

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

/** A new client leg: found by its session, its error and close heard from now on. */
export function wireClient(client: Socket, s: SessionSockets): void {
  tag(client, s);
  client.on('error', clientError);
  client.on('close', clientClose);
}

/** A backend leg handed to `s`: its error, close, FIN and drain heard (its bytes by `splice`). */
export function wireBackend(sock: Socket, s: SessionSockets): void {
  tag(sock, s);
  sock.on('error', backendError);
  sock.on('close', backendClose);
  sock.on('end', backendEnd);
  sock.on('drain', backendDrain);
}

/** The client's FIN and drain, wired once a first backend leg is attached (kept over a redial). */
export function wireClientFlow(client: Socket): void {
  client.on('end', clientEnd);
  client.on('drain', clientDrain);
}

/** A session's two data listeners: the plain pair below, or shaped-listeners.ts's for a limited session. */
export interface DataListeners {
  readonly client: (this: Socket, chunk: Buffer) => void;
  readonly backend: (this: Socket, chunk: Buffer) => void;
}

/** The data listeners of a session without bandwidth limits (the common case). */
export const PLAIN: DataListeners = { client: clientData, backend: backendData };

/**
 * Bytes both ways. Our own data listeners rather than pipe(): one shared
 * listener per direction, no per-chunk closures, and FINs carried by
 * onClientEnd/onBackendEnd, so a warm socket that dies untouched can be
 * swapped out before its FIN reaches the client. The pair is chosen once, here,
 * so a chunk's path has no branch on whether the session is limited.
 */
export function splice(client: Socket, sock: Socket, data: DataListeners): void {
  sock.on('data', data.backend);
  client.on('data', data.client);
}

/** Undoes wireBackend and splice on an untouched warm socket being swapped out; the client is left paused. */
export function unsplice(client: Socket, sock: Socket, data: DataListeners): void {
  sock.removeListener('data', data.backend);
  sock.removeListener('drain', backendDrain);
  client.removeListener('data', data.client);
  client.pause();
  sock.removeListener('close', backendClose);
  sock.removeListener('end', backendEnd);
}

/** A backend leg whose hand-over threw part-way: never without an 'error' listener, and its close ends `s`. */
export function wireFailedBackend(sock: Socket, s: SessionSockets): void {
  if (sock.listenerCount('error') === 0) sock.on('error', noop);
  if (!sock.listeners('close').includes(backendClose)) {
    tag(sock, s);
    sock.on('close', backendClose);
  }
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
