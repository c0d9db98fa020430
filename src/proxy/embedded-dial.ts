import type { Socket } from 'node:net';
import type { BackendSet } from '../backend/backend-set.js';
import type { SlotLease } from '../backend/lease.js';
import { LbError } from '../errors.js';
import { noop } from '../noop.js';
import type { PooledSocket } from '../pool/warm-pool.js';
import type { DialAttempt, DialRequester } from './dial-attempt.js';
import type { Dialer } from './dialer.js';

/**
 * One `LoadBalancer.connect()` call: the same dial as a client session gets
 * (strategy pick, warm socket or fresh connect, retries with backoff on
 * another backend), ending in a connected socket handed to the caller instead
 * of a splice. The socket counts as a session on its backend until it closes.
 * An abort cancels the attempt; the abort listener goes once the dial settles,
 * so a signal shared by many calls does not collect them.
 */
export class EmbeddedDial implements DialRequester {
  readonly result: Promise<Socket>;
  private resolve!: (s: Socket) => void;
  private reject!: (e: Error) => void;
  private attempt: DialAttempt | null = null;
  private settled = false;
  private readonly onAbort = (): void => {
    if (this.settled) return;
    const a = this.attempt;
    this.settle();
    a?.cancel();
    this.reject(new LbError('LB_ERR_ABORTED', 'connect aborted'));
  };

  constructor(
    private readonly backends: BackendSet,
    dialer: Dialer,
    clientKey: string,
    private readonly signal?: AbortSignal,
  ) {
    this.result = new Promise((res, rej) => {
      this.resolve = res;
      this.reject = rej;
    });
    if (signal?.aborted) {
      this.onAbort();
      return;
    }
    signal?.addEventListener('abort', this.onAbort, { once: true });
    const a = dialer.begin(this, clientKey, false);
    if (!this.settled) this.attempt = a;
  }

  dialed(_a: DialAttempt, sock: Socket, lease: SlotLease, pooled: PooledSocket | null): void {
    this.settle();
    this.backends.sessionOpened(lease.backend);
    // Held until the caller reads, and bytes the backend sent to a warm socket come first. A stream
    // paused on purpose is not resumed by a 'data' listener, so the first one resumes it here, as a
    // fresh socket would behave.
    sock.pause();
    if (pooled && pooled.early.length > 0) sock.unshift(Buffer.concat(pooled.early));
    const resumeOnData = (event: string | symbol): void => {
      if (event !== 'data') return;
      sock.off('newListener', resumeOnData);
      process.nextTick(() => sock.resume());
    };
    sock.on('newListener', resumeOnData);
    sock.setTimeout(0);
    // Never an unhandled 'error': the caller's own listeners still see every error.
    sock.on('error', noop);
    sock.once('close', () => lease.end(sock.bytesRead, sock.bytesWritten));
    this.resolve(sock);
  }

  dialFailed(_a: DialAttempt, err: LbError): void {
    this.settle();
    this.reject(err);
  }

  private settle(): void {
    this.settled = true;
    this.attempt = null;
    this.signal?.removeEventListener('abort', this.onAbort);
  }
}
