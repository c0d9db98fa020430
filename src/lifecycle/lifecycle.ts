import type { Clock } from '../clock.js';
import { monotonicClock } from '../clock.js';
import type { ProcessConfig } from '../config/process.js';
import { LbError } from '../errors.js';
import type { Logger } from '../logger.js';
import { startSuccessor } from './successor.js';

export type LifecycleState = 'serving' | 'upgrading' | 'handed-over' | 'stopping';

/** Where the sockets to hand over come from: the listeners here, or a cluster worker's copies. */
export type SocketSource = () => Promise<{
  sockets: Map<string, object>;
  release(): void;
}>;

/**
 * The process's lifecycle beyond config: whether it tells an outer balancer
 * it is ready (drain / undrain, drain_delay before a stop), and upgrades,
 * where a new process takes the listening sockets and this one then
 * retires. One upgrade at a time; after one succeeds this process only
 * drains.
 */
export class Lifecycle {
  private state: LifecycleState = 'serving';
  /** When drain was asked for (monotonic ms); null: not draining. */
  private drainedAt: number | null = null;

  constructor(
    private readonly settings: () => ProcessConfig,
    private readonly sockets: SocketSource,
    private readonly log: Logger,
    private readonly clock: Clock = monotonicClock,
  ) {}

  get current(): LifecycleState {
    return this.state;
  }

  get draining(): boolean {
    return this.drainedAt !== null;
  }

  /** Why this process should get no new clients from an outer balancer; null: it should. */
  notReadyBecause(): string | null {
    if (this.state === 'handed-over') return 'handed over to a new process; draining';
    if (this.state === 'stopping') return 'stopping';
    if (this.drainedAt !== null) return 'draining (POST /api/drain); still accepting';
    return null;
  }

  /** /readyz answers 503 from now on; the listeners keep accepting. */
  drain(): void {
    if (this.drainedAt !== null) return;
    this.drainedAt = this.clock.now();
    this.log.info('drain: /readyz answers 503; still accepting');
  }

  undrain(): void {
    if (this.drainedAt === null) return;
    this.drainedAt = null;
    this.log.info('undrain: /readyz answers 200 again');
  }

  /**
   * Before a stop stops accepting: /readyz turns 503 and the listeners keep
   * accepting for `drain_delay`, less the time already spent drained (POST
   * /api/drain earlier), so an outer balancer takes this process out first.
   * `skip` (a second signal) cuts it short.
   */
  holdBeforeStop(skip: Promise<void>): Promise<void> {
    this.state = 'stopping';
    const since = this.drainedAt ?? this.clock.now();
    this.drainedAt = since;
    const left = this.settings().drainDelayMs - (this.clock.now() - since);
    if (left <= 0) return Promise.resolve();
    this.log.info(
      { drainDelayMs: left },
      'stopping: /readyz answers 503; still accepting for drain_delay',
    );
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, left);
      void skip.then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /**
   * Starts the new process with this one's listening sockets and resolves
   * with its PID once it serves; this process keeps serving until then, and
   * for good if it fails (the reason is logged and thrown, LB_ERR_UPGRADE).
   * The caller then stops accepting and drains (see cli.ts).
   */
  async upgrade(): Promise<number> {
    if (this.state !== 'serving')
      throw new LbError('LB_ERR_STATE', `cannot upgrade: this process is ${this.state}`);
    this.state = 'upgrading';
    const timeoutMs = this.settings().upgradeTimeoutMs;
    this.log.info({ timeoutMs }, 'upgrade: starting the new process');
    let release = (): void => {};
    try {
      const got = await this.sockets();
      release = got.release;
      const pid = await startSuccessor({
        sockets: got.sockets,
        timeoutMs,
        drainMs: this.settings().shutdownTimeoutMs,
        log: this.log,
      });
      // A stop that began meanwhile (SIGTERM) stays a stop.
      if (this.state === 'upgrading') this.state = 'handed-over';
      this.log.info(
        { newPid: pid },
        'upgrade: the new process serves; this one stops accepting and drains',
      );
      return pid;
    } catch (err) {
      if (this.state === 'upgrading') this.state = 'serving';
      const reason = (err as Error).message;
      this.log.error({ reason }, 'upgrade failed; this process keeps serving');
      throw err instanceof LbError ? err : new LbError('LB_ERR_UPGRADE', reason);
    } finally {
      release();
    }
  }
}
