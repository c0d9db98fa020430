import type { Socket } from 'node:net';

/** What a queued client may send before it is paused (it reaches the backend first). */
const MAX_HELD_BYTES = 16 * 1024;

/**
 * Reads a (paused) client while its session waits in the queue, or a client
 * that leaves would be noticed only at the head of the queue, holding a place
 * all along. A reset closes the socket, which its session sees. A FIN with
 * nothing sent is a client that gave up: `left` is called. A FIN after a
 * request is a half-close, and the request waits. What it sends goes into
 * `held` (the client is paused past 16 KiB) for the backend. Returns the
 * function that stops watching and leaves the client paused.
 */
export function watchQueued(client: Socket, held: Buffer[], left: () => void): () => void {
  let bytes = 0;
  for (const chunk of held) bytes += chunk.length;
  const onData = (chunk: Buffer): void => {
    held.push(chunk);
    bytes += chunk.length;
    if (bytes >= MAX_HELD_BYTES) client.pause();
  };
  const onEnd = (): void => {
    if (bytes === 0) left();
  };
  client.on('data', onData);
  client.once('end', onEnd);
  client.resume();
  return () => {
    client.removeListener('data', onData);
    client.removeListener('end', onEnd);
    client.pause();
  };
}

/**
 * A queued client's watch (see watchQueued) and what it sent meanwhile. Made
 * only for a session that waits, so one that never queues carries nothing.
 */
export class QueuedClient {
  private readonly held: Buffer[] = [];
  private stopFn: (() => void) | null = null;

  /** Watches `client` (again, after a redial put it back on hold) until stopped. */
  watch(client: Socket, left: () => void): void {
    if (this.stopFn === null) this.stopFn = watchQueued(client, this.held, left);
  }

  get watching(): boolean {
    return this.stopFn !== null;
  }

  stop(): void {
    this.stopFn?.();
    this.stopFn = null;
  }

  /** What the client sent while it waited goes to the backend first (once: a redial has sent it already), and to `copy` (a mirror). */
  flushTo(sock: Socket, copy: { write(chunk: Buffer): void } | null = null): void {
    for (const chunk of this.held) {
      sock.write(chunk);
      copy?.write(chunk);
    }
    this.held.length = 0;
  }
}
