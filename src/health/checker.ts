import type { Backend } from '../backend/backend.js';
import type { BackendSet } from '../backend/backend-set.js';
import { type Clock, monotonicClock } from '../clock.js';
import type { HealthConfig } from '../config/schema.js';
import type { LocalErrors } from '../local-errors.js';
import type { Logger } from '../logger.js';
import type { BackendTls } from '../proxy/tls/backend-tls.js';
import { httpProbe } from './http-probe.js';
import { type ProbeResult, tcpProbe } from './tcp-probe.js';

/**
 * Active health checks for one service: one probe loop per backend, every
 * `interval`, each bounded by `timeout`. Results go to BackendSet, which
 * alone decides up/down (rise/fall) and emits on change.
 *
 * The first round runs at start. Backends are staggered across the interval
 * (at most 100 ms apart at first) so they are never all probed in the same
 * millisecond, and each later wait is jittered by ±10 % so loops do not
 * drift back into step.
 */
export class HealthChecker {
  private readonly timers = new Map<Backend, NodeJS.Timeout>();
  private readonly inFlight = new Map<Backend, Promise<void>>();
  private running = false;
  /** Set when probes go over TLS (health.tls). */
  private readonly tls: BackendTls | null;
  private readonly onRemoved = (b: Backend): void => this.unschedule(b);

  constructor(
    private readonly cfg: HealthConfig,
    private readonly set: BackendSet,
    private readonly log: Logger,
    private readonly clock: Clock = monotonicClock,
    /** The balancer's own resource errors: a probe that hits one gives no verdict. */
    private readonly localErrors: LocalErrors | null = null,
    private readonly random: () => number = Math.random,
    /** The service's backend_tls; probes use it when health.tls is on. */
    backendTls: BackendTls | null = null,
  ) {
    this.tls = cfg.tls ? backendTls : null;
  }

  get enabled(): boolean {
    return this.cfg.kind !== 'none';
  }

  start(): void {
    if (!this.enabled || this.running) return;
    this.running = true;
    const n = this.set.all.length;
    const step = n > 0 ? Math.min(this.cfg.intervalMs / n, 100) : 0;
    this.set.all.forEach((b, i) => {
      this.schedule(b, i * step);
    });
    this.set.on('removed', this.onRemoved);
  }

  /** Starts probing a backend added at run time. */
  watch(b: Backend): void {
    if (this.running && !this.timers.has(b)) this.schedule(b, 0);
  }

  stop(): void {
    this.running = false;
    this.set.off('removed', this.onRemoved);
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  /** Probes every backend now (the manual hook); resolves when all verdicts are in. */
  async checkAll(): Promise<void> {
    if (!this.enabled) return;
    await Promise.all(this.set.all.map((b) => this.probe(b)));
  }

  private schedule(b: Backend, delayMs: number): void {
    const t = setTimeout(async () => {
      await this.probe(b);
      if (!this.running || b.removed) return;
      const jitter = 1 + (this.random() * 0.2 - 0.1);
      this.schedule(b, this.cfg.intervalMs * jitter);
    }, delayMs);
    t.unref();
    this.timers.set(b, t);
  }

  private unschedule(b: Backend): void {
    const t = this.timers.get(b);
    if (t) clearTimeout(t);
    this.timers.delete(b);
  }

  /** One probe; a probe already under way for this backend is joined, not doubled. */
  private probe(b: Backend): Promise<void> {
    const running = this.inFlight.get(b);
    if (running) return running;
    const p = this.runProbe(b).then((r) => {
      this.inFlight.delete(b);
      this.log.trace({ backend: b.address, ok: r.ok, detail: r.detail, ms: r.latencyMs }, 'probe');
      if (!r.ok && this.localErrors?.claim(r.detail, 'probe', b.address)) return;
      this.set.reportProbe(b, r.ok, r.detail, r.latencyMs);
    });
    this.inFlight.set(b, p);
    return p;
  }

  private runProbe(b: Backend): Promise<ProbeResult> {
    return this.cfg.kind === 'http'
      ? httpProbe(b, this.cfg.path, this.cfg.timeoutMs, this.clock, this.tls)
      : tcpProbe(b, this.cfg.timeoutMs, this.clock, this.tls);
  }
}
