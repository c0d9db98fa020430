import type { Socket } from 'node:net';
import type { Shaper } from './bandwidth.js';
import { owner, type SessionSockets } from './session-listeners.js';

/**
 * The data listeners of a session with a bandwidth limit, in place of
 * clientData / backendData (Session.attach picks them): the chunk is passed on
 * whole, then the reader pauses when the writer is full (its 'drain' resumes
 * it) or the bucket is in debt (the service's Bandwidth timer resumes it).
 * Nothing is held here: what was read is written, and no more is read.
 */

type Shaped = SessionSockets & { readonly shaper: Shaper };

export function clientDataShaped(this: Socket, chunk: Buffer): void {
  const s = owner(this) as Shaped;
  s.clientBusy = true;
  const full = !(s.backend as Socket).write(chunk);
  if (s.shaper.up(chunk.length) || full) this.pause();
}

export function backendDataShaped(this: Socket, chunk: Buffer): void {
  const s = owner(this) as Shaped;
  s.backendBusy = true;
  const full = !s.client.write(chunk);
  if (s.shaper.down(chunk.length) || full) this.pause();
}

/** splice() for a session with a bandwidth limit. */
export function spliceShaped(client: Socket, sock: Socket): void {
  sock.on('data', backendDataShaped);
  client.on('data', clientDataShaped);
}

/** What unsplice() leaves of spliceShaped on a warm socket being swapped out. */
export function unspliceShaped(client: Socket, sock: Socket): void {
  sock.removeListener('data', backendDataShaped);
  client.removeListener('data', clientDataShaped);
}
