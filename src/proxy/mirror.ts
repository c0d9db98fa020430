import type { Socket } from 'node:net';
import type { MirrorConfig } from '../config/mirror.js';
import { noop } from '../noop.js';
import { connectTo } from '../upstream/connect.js';

/** Why a mirror connection was given up (the session never is). */
export const MIRROR_DROPS = ['buffer-full', 'connect-failed', 'reset', 'unfinished'] as const;
export type MirrorDrop = (typeof MIRROR_DROPS)[number];

/** Plain counters of a service's mirroring, read by metrics at scrape time. */
export interface MirrorCounters {
  /** Sessions sampled and given a mirror connection. */
  sessions: number;
  /** Bytes written to mirror connections (counted as each closes). */
  bytes: number;
  drops: Record<MirrorDrop, number>;
}

/**
 * After its session ended, how long a mirror connection may take to accept
 * what it still holds (within its bound) before it is dropped as 'unfinished'.
 */
export const MIRROR_LINGER_MS = 5_000;

/**
 * The mirroring of one service: which sessions are sampled, and the counters.
 * Sampling is a running sum, not a random draw: percent = 10 mirrors exactly
 * every tenth session (each process counting its own), so a share is exact
 * over any run of sessions and a test can rely on it.
 */
export class Mirroring {
  readonly counters: MirrorCounters = {
    sessions: 0,
    bytes: 0,
    drops: { 'buffer-full': 0, 'connect-failed': 0, reset: 0, unfinished: 0 },
  };
  private credit = 0;

  /**
   * A mirror for a session starting now, or null (not sampled, or no mirror
   * configured): the mirror connection is opened at once, beside the real
   * dial, and `client` is followed for its FIN and close.
   */
  tap(cfg: MirrorConfig | null, client: Socket, connectTimeoutMs: number): MirrorTap | null {
    if (cfg === null || cfg.percent === 0) return null;
    this.credit += cfg.percent;
    if (this.credit < 100) return null;
    this.credit -= 100;
    this.counters.sessions++;
    return new MirrorTap(cfg, client, connectTimeoutMs, this.counters);
  }
}

/**
 * One session's mirror connection. It is written what the client sends (the
 * same chunks, as the session reads them) and never pauses the client: a
 * write only queues, and once more than `buffer` bytes wait unsent (the
 * mirror is slow, stalled, or still connecting), the mirror connection is
 * destroyed and counted. What the mirror sends back is read and thrown away.
 * A failed connect, a reset or an error ends only the mirror. The client's
 * FIN is passed on; when the client's socket closes, the mirror gets
 * MIRROR_LINGER_MS to take what it still holds.
 */
export class MirrorTap {
  private readonly sock: Socket;
  private dropped = false;
  private closed = false;
  private headerSent = false;
  private following = false;
  private linger: NodeJS.Timeout | null = null;
  /** The client's 'data' listener: one closure per mirrored session, none per chunk. */
  private readonly onData = (chunk: Buffer): void => this.write(chunk);
  private readonly onClientEnd = (): void => {
    if (!this.dropped) this.sock.end();
  };
  private readonly onClientClose = (hadError: boolean): void => this.clientClosed(hadError);

  constructor(
    private readonly cfg: MirrorConfig,
    private readonly client: Socket,
    connectTimeoutMs: number,
    private readonly counters: MirrorCounters,
  ) {
    this.sock = connectTo(cfg, connectTimeoutMs, (failure) => {
      if (failure !== null) {
        this.drop('connect-failed');
        return;
      }
      this.sock.on('error', () => this.drop('reset'));
    });
    this.sock.on('close', () => this.onClose());
    // Read and discarded: flowing, with no 'data' listener.
    this.sock.resume();
    client.once('end', this.onClientEnd);
    client.once('close', this.onClientClose);
  }

  /** The PROXY header the backend got (send_proxy): the mirror gets it too, once, before any byte. */
  header(h: Buffer): void {
    if (this.headerSent) return;
    this.headerSent = true;
    this.write(h);
  }

  /**
   * From now on every chunk the client's socket yields is copied here. Called
   * where the session starts reading the client, never earlier: a 'data'
   * listener would start the flow of a client that is still held paused.
   */
  follow(): void {
    if (this.following || this.dropped) return;
    this.following = true;
    this.client.on('data', this.onData);
  }

  write(chunk: Buffer): void {
    if (this.dropped) return;
    this.sock.write(chunk);
    if (this.sock.writableLength > this.cfg.bufferBytes) this.drop('buffer-full');
  }

  private clientClosed(hadError: boolean): void {
    this.client.removeListener('data', this.onData);
    if (this.dropped || this.closed) return;
    // A client that reset is not worth a copy of its last bytes; nor is one that never got a backend.
    if (hadError || !this.following) {
      this.dropped = true;
      this.sock.destroy();
      return;
    }
    if (!this.sock.writableEnded) this.sock.end();
    this.linger = setTimeout(() => this.lingered(), MIRROR_LINGER_MS);
    this.linger.unref();
  }

  /** The grace after the session is over: all written (the mirror only kept its side open) or not. */
  private lingered(): void {
    this.linger = null;
    if (this.sock.writableFinished) this.sock.destroy();
    else this.drop('unfinished');
  }

  private drop(cause: MirrorDrop): void {
    if (this.dropped) return;
    this.dropped = true;
    this.counters.drops[cause]++;
    this.client.removeListener('data', this.onData);
    this.sock.on('error', noop);
    this.sock.destroy();
  }

  private onClose(): void {
    this.closed = true;
    if (this.linger) clearTimeout(this.linger);
    this.linger = null;
    this.counters.bytes += this.sock.bytesWritten;
    this.client.removeListener('data', this.onData);
  }
}
