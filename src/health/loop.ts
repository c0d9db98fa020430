import type { Backend } from '../backend/backend.js';
import type { BackendSet } from '../backend/backend-set.js';

/**
 * One timer loop per backend: run `task` now, then every `intervalMs`,
 * jittered by ±10 % so loops do not drift back into step. Backends are
 * staggered at start (at most 100 ms apart) so they are never all contacted
 * in the same millisecond. A task under way for a backend is joined, not
 * doubled. Shared by the health probes and the agent check.
 */
export class BackendLoop {
  private readonly timers = new Map<Backend, NodeJS.Timeout>();
  private readonly inFlight = new Map<Backend, Promise<void>>();
  private running = false;
  private readonly onRemoved = (b: Backend): void => this.unschedule(b);
  /** A backend added at run time joins at once. */
  private readonly onAdded = (b: Backend): void => {
    if (this.running && !this.timers.has(b)) this.schedule(b, 0);
  };

  constructor(
    private readonly set: BackendSet,
    private readonly intervalMs: number,
    private readonly task: (b: Backend) => Promise<void>,
    private readonly random: () => number = Math.random,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    const n = this.set.all.length;
    const step = n > 0 ? Math.min(this.intervalMs / n, 100) : 0;
    this.set.all.forEach((b, i) => {
      this.schedule(b, i * step);
    });
    this.set.on('added', this.onAdded);
    this.set.on('removed', this.onRemoved);
  }

  stop(): void {
    this.running = false;
    this.set.off('added', this.onAdded);
    this.set.off('removed', this.onRemoved);
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  /** Runs the task for every backend now; resolves when all are done. */
  async runAll(): Promise<void> {
    await Promise.all(this.set.all.map((b) => this.run(b)));
  }

  private schedule(b: Backend, delayMs: number): void {
    const t = setTimeout(async () => {
      await this.run(b);
      if (!this.running || b.removed) return;
      const jitter = 1 + (this.random() * 0.2 - 0.1);
      this.schedule(b, this.intervalMs * jitter);
    }, delayMs);
    t.unref();
    this.timers.set(b, t);
  }

  private unschedule(b: Backend): void {
    const t = this.timers.get(b);
    if (t) clearTimeout(t);
    this.timers.delete(b);
  }

  private run(b: Backend): Promise<void> {
    const running = this.inFlight.get(b);
    if (running) return running;
    const p = this.task(b).finally(() => this.inFlight.delete(b));
    this.inFlight.set(b, p);
    return p;
  }
}
