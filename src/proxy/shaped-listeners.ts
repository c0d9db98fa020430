import type { Socket } from 'node:net';
import type { Shaper } from './bandwidth.js';
import { type DataListeners, owner, type SessionSockets } from './session-listeners.js';

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

/** The data listeners splice() gives a session with a bandwidth limit. */
export const SHAPED: DataListeners = { client: clientDataShaped, backend: backendDataShaped };
