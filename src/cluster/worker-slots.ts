import cluster, { type Worker } from 'node:cluster';
import type { ExtraMetric } from '../admin/metrics.js';
import type { Clock } from '../clock.js';
import { LbError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { WorkerIpc } from './ipc.js';
import { type FromWorker, isFromWorker, type ToWorker, type WorkerInit } from './messages.js';
import type { WorkerStatus } from './views.js';

/** Restart backoff: 100 ms, doubling per quick death, at most 10 s; reset once a worker lived 10 s. */
const RESTART_MIN_MS = 100;
const RESTART_MAX_MS = 10_000;
const STABLE_MS = 10_000;
/** After the drain deadline, workers still alive this much later are killed. */
const STOP_GRACE_MS = 5_000;

export interface Slot {
  n: number;
  worker: Worker | null;
  state: WorkerStatus['state'];
  /** The running worker has been sent its config (so it must also be sent each reload). */
  configured: boolean;
  restarts: number;
  /** Consecutive deaths within STABLE_MS of starting. */
  quickDeaths: number;
  startedAt: number;
  timer: NodeJS.Timeout | null;
}

/** What the slots need from the primary that owns them. */
export interface SlotHooks {
  /** Read when a worker says hello, so a worker (re)started after a reload gets the config in force. */
  initial(): WorkerInit;
  /** Sockets the primary holds for slot `n`, by listen address: sent to its worker before `init`. */
  sockets(n: number): ReadonlyMap<string, readonly object[]>;
  /** A copy of a socket slot `n`'s worker listens on (see HeldSockets.store). */
  handle(n: number, address: string, handle: unknown): void;
  /** A worker's dial outcome: the passive health signal the primary's BackendSet decides on. */
  dial(m: Extract<FromWorker, { t: 'dial' }>): void;
  /** A slot's worker died or stopped: what it last reported must outlive it. */
  retire(w: Worker): void;
}

/**
 * The N worker processes, one per slot: forks each, waits for it to listen,
 * restarts one that dies with backoff while the others keep serving, and
 * stops them all at shutdown.
 */
export class WorkerSlots {
  private readonly slots: Slot[];
  private stopping = false;

  constructor(
    count: number,
    private readonly ipc: WorkerIpc,
    private readonly hooks: SlotHooks,
    private readonly log: Logger,
    private readonly clock: Clock,
  ) {
    this.slots = Array.from({ length: count }, (_, i) => ({
      n: i + 1,
      worker: null,
      state: 'starting' as const,
      configured: false,
      restarts: 0,
      quickDeaths: 0,
      startedAt: 0,
      timer: null,
    }));
  }

  /** Forks every worker; resolves when all are listening. LB_ERR_LISTEN if one cannot bind. */
  async start(): Promise<void> {
    await Promise.all(this.slots.map((s) => this.spawn(s)));
  }

  private spawn(s: Slot): Promise<void> {
    const w = cluster.fork();
    s.worker = w;
    s.state = 'starting';
    s.configured = false;
    s.startedAt = this.clock.now();
    return new Promise((resolve, reject) => {
      let settled = false;
      w.on('message', (m: unknown, handle: unknown) => {
        if (!isFromWorker(m)) return;
        if (m.t === 'hello') {
          s.configured = true;
          for (const [address, list] of this.hooks.sockets(s.n))
            for (const h of list) this.ipc.post(w, { t: 'socket', address }, h);
          this.ipc.post(w, {
            t: 'init',
            slot: s.n,
            workers: this.slots.length,
            ...this.hooks.initial(),
          });
        } else if (m.t === 'ready') {
          settled = true;
          s.state = 'up';
          this.log.info({ worker: s.n, workerPid: w.process.pid }, 'worker up');
          resolve();
        } else if (m.t === 'fatal') {
          settled = true;
          reject(new LbError('LB_ERR_LISTEN', m.message));
        } else if (m.t === 'dial') this.hooks.dial(m);
        else if (m.t === 'handle') {
          if (handle) this.hooks.handle(s.n, m.address, handle);
        } else if (m.t === 'reply') this.ipc.settle(m);
      });
      w.on('error', (err) => this.log.warn({ worker: s.n, err: err.message }, 'worker IPC error'));
      w.on('exit', (code, signal) => {
        this.ipc.failPending(w);
        if (!settled) {
          settled = true;
          reject(
            new LbError(
              'LB_ERR_STATE',
              `worker ${s.n} exited (${signal ?? `code ${code}`}) before it was ready`,
            ),
          );
        }
        this.onExit(s, w, code, signal);
      });
    });
  }

  private onExit(s: Slot, w: Worker, code: number | null, signal: string | null): void {
    if (s.worker !== w) return;
    s.worker = null;
    this.hooks.retire(w);
    // During start too: a worker that died after saying ready is restarted; if start fails,
    // stop() clears the timer.
    if (this.stopping) return;
    const lived = this.clock.now() - s.startedAt;
    s.quickDeaths = lived >= STABLE_MS ? 1 : s.quickDeaths + 1;
    const delay = Math.min(RESTART_MIN_MS * 2 ** (s.quickDeaths - 1), RESTART_MAX_MS);
    s.restarts++;
    s.state = 'restarting';
    this.log.error(
      { worker: s.n, workerPid: w.process.pid, code, signal, restartInMs: delay },
      'worker died; restarting it (the others keep serving)',
    );
    s.timer = setTimeout(() => {
      s.timer = null;
      this.spawn(s).catch((err: Error) =>
        this.log.error({ worker: s.n, reason: err.message }, 'worker failed to start'),
      );
    }, delay);
  }

  /** Slots whose worker is serving: the ones asked for views and metrics. */
  get up(): Slot[] {
    return this.slots.filter((s) => s.state === 'up' && s.worker);
  }

  /** How many slots there are (workers running or to be restarted). */
  get count(): number {
    return this.slots.length;
  }

  /** Slots whose worker was sent a config, starting ones included: each must be sent every reload. */
  get configured(): Slot[] {
    return this.slots.filter((s) => s.worker && s.configured);
  }

  /** To every worker running, starting or draining. */
  postAll(m: ToWorker): void {
    for (const s of this.slots) if (s.worker) this.ipc.post(s.worker, m);
  }

  /**
   * Stops every worker: one that is up drains for up to timeoutMs, one still
   * starting is killed; any alive STOP_GRACE_MS after the deadline is killed.
   * No worker is restarted from here on.
   */
  async stop(timeoutMs: number): Promise<void> {
    this.stopping = true;
    const live: Worker[] = [];
    for (const s of this.slots) {
      if (s.timer) clearTimeout(s.timer);
      s.timer = null;
      const w = s.worker;
      if (!w) continue;
      live.push(w);
      if (s.state === 'up') this.ipc.post(w, { t: 'stop', timeoutMs });
      else w.process.kill('SIGKILL');
      s.state = 'stopping';
    }
    const exits = live.map((w) =>
      w.isDead() ? Promise.resolve() : new Promise<void>((r) => w.once('exit', () => r())),
    );
    const guard = setTimeout(() => {
      for (const w of live) if (!w.isDead()) w.process.kill('SIGKILL');
    }, timeoutMs + STOP_GRACE_MS);
    await Promise.all(exits);
    clearTimeout(guard);
  }

  /** Slots and their state, for /api/services. */
  status(): WorkerStatus[] {
    return this.slots.map((s) => ({
      worker: s.n,
      pid: s.worker?.process.pid ?? null,
      state: s.state,
      restarts: s.restarts,
    }));
  }

  /** The primary's own metrics of its workers, read at scrape time. */
  metrics(): ExtraMetric[] {
    return [
      {
        name: 'blitz_lb_workers',
        help: 'Worker processes serving traffic now.',
        type: 'gauge',
        read: () => [{ value: this.slots.filter((s) => s.state === 'up').length, labels: {} }],
      },
      {
        name: 'blitz_lb_worker_restarts_total',
        help: 'Workers restarted after they died.',
        type: 'counter',
        read: () => this.slots.map((s) => ({ value: s.restarts, labels: { worker: String(s.n) } })),
      },
    ];
  }
}
