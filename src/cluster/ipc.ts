import type { Worker } from 'node:cluster';
import type { Config } from '../config/schema.js';
import type { Logger } from '../logger.js';
import type { FromWorker, SessionQuery, ToWorker } from './messages.js';

/** A request the primary sends to a worker; `id` is added on sending. */
export type Query =
  | { t: 'reload'; config: Config }
  | { t: 'query'; what: 'view' | 'metrics' }
  | { t: 'sessions'; q: SessionQuery };

/** Where a request goes: the slot's worker is read when it is sent, so a restarted slot gets its new one. */
export interface RequestTarget {
  readonly n: number;
  readonly worker: Worker | null;
}

interface Pending {
  worker: Worker;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * The primary's side of the IPC channel to its workers: one-way posts, and
 * requests whose replies are matched by id. A request settles exactly once:
 * with the reply, at its timeout, or when its worker exits.
 */
export class WorkerIpc {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  constructor(private readonly log: Logger) {}

  /** A worker that is gone or going cannot take a message; that is not worth more than a warning. */
  post(w: Worker, m: ToWorker, handle?: object): void {
    if (!w.isConnected()) return;
    try {
      if (handle) w.send(m, handle as never);
      else w.send(m);
    } catch (err) {
      this.log.warn({ pid: w.process.pid, err: (err as Error).message }, 'worker IPC send failed');
    }
  }

  request(s: RequestTarget, q: Query, timeoutMs: number): Promise<unknown> {
    const w = s.worker;
    if (!w) return Promise.reject(new Error(`worker ${s.n} is not running`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`worker ${s.n}: no reply in ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { worker: w, resolve, reject, timer });
      this.post(w, { ...q, id });
    });
  }

  /** A reply that comes after its request timed out finds nothing and is dropped. */
  settle(m: Extract<FromWorker, { t: 'reply' }>): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    clearTimeout(p.timer);
    if (m.ok) p.resolve(m.data);
    else p.reject(new Error(m.error));
  }

  /** A worker exited: its requests can never be answered, so they fail now rather than at their timeout. */
  failPending(w: Worker): void {
    for (const [id, p] of this.pending) {
      if (p.worker !== w) continue;
      this.pending.delete(id);
      clearTimeout(p.timer);
      p.reject(new Error('the worker exited'));
    }
  }
}
