import type { Socket } from 'node:net';
import type { Backend } from '../backend/backend.js';
import type { BackendSet } from '../backend/backend-set.js';
import type { PickContext } from '../balancer/strategy.js';
import { LbError } from '../errors.js';
import type { PooledSocket } from '../pool/warm-pool.js';
import type { DialTarget } from './dialer.js';

/**
 * One `LoadBalancer.connect()` call: the same dial as a client session gets
 * (strategy pick, warm socket or fresh connect, retries with backoff on
 * another backend), ending in a connected socket handed to the caller instead
 * of a splice. The socket counts as a session on its backend until it closes.
 */
export class EmbeddedDial implements DialTarget {
  closed = false;
  readonly ctx: PickContext & { tried: Backend[] } = { clientIp: '', tried: [], now: 0 };
  readonly attempts: { backend: string; cause: string }[] = [];
  reserved: Backend | null = null;
  pending: Socket | null = null;
  retryTimer: NodeJS.Timeout | null = null;
  noPool = false;
  readonly result: Promise<Socket>;
  private resolve!: (s: Socket) => void;
  private reject!: (e: Error) => void;

  constructor(
    private readonly set: BackendSet,
    signal?: AbortSignal,
  ) {
    this.result = new Promise((res, rej) => {
      this.resolve = res;
      this.reject = rej;
    });
    if (signal?.aborted) this.abort();
    else signal?.addEventListener('abort', () => this.abort(), { once: true });
  }

  attach(sock: Socket, target: Backend, pooled: PooledSocket | null): void {
    this.reserved = null;
    this.closed = true;
    this.set.sessionOpened(target);
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
    sock.once('close', () => this.set.sessionClosed(target, sock.bytesRead, sock.bytesWritten));
    this.resolve(sock);
  }

  dialFailed(err: LbError): void {
    this.closed = true;
    this.reject(err);
  }

  private abort(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.pending?.destroy();
    if (this.reserved) this.set.release(this.reserved);
    this.reserved = null;
    this.reject(new LbError('LB_ERR_ABORTED', 'connect aborted'));
  }
}

function noop(): void {}
