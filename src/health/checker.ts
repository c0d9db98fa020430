import type { Backend } from '../backend/backend.js';
import type { BackendSet } from '../backend/backend-set.js';
import { type Clock, monotonicClock } from '../clock.js';
import type { HealthConfig } from '../config/schema.js';
import type { LocalErrors } from '../local-errors.js';
import type { Logger } from '../logger.js';
import type { BackendTls } from '../proxy/tls/backend-tls.js';
import { holdDialogue } from './dialogue.js';
import { converse, type Step } from './exchange.js';
import { httpProbe } from './http-probe.js';
import { BackendLoop } from './loop.js';
import { MysqlLogin } from './mysql-login.js';
import { mysqlSteps } from './mysql-probe.js';
import { PostgresLogin } from './postgres-login.js';
import { postgresSteps } from './postgres-probe.js';
import { redisSteps } from './redis-probe.js';
import { sendExpectSteps } from './send-expect.js';
import { smtpSteps } from './smtp-probe.js';
import { type ProbeResult, type ProbeTarget, tcpProbe } from './tcp-probe.js';

/** The conversation of a kind that speaks its protocol; null for tcp, http and none. */
function stepsFor(cfg: HealthConfig): readonly Step[] | null {
  switch (cfg.kind) {
    case 'send-expect':
      return sendExpectSteps(cfg.steps);
    case 'redis':
      return redisSteps(cfg.role);
    case 'mysql':
      return mysqlSteps();
    case 'postgres':
      return postgresSteps();
    case 'smtp':
      return smtpSteps();
    default:
      return null;
  }
}

/**
 * Active health checks for one service: one probe loop per backend (see
 * BackendLoop), every `interval`, each bounded by `timeout`. Results go to
 * BackendSet, which alone decides up/down (rise/fall) and emits on change.
 * The first round runs at start. Probes go to the backend, or to the health
 * table's `address` / `port` in its place.
 */
export class HealthChecker {
  private readonly loop: BackendLoop;
  private readonly steps: readonly Step[] | null;
  /** Set when probes go over TLS (health.tls). */
  private readonly tls: BackendTls | null;
  /** A login probe's salted SCRAM passwords, kept across its logins. */
  private readonly salted = new Map<string, Buffer>();

  constructor(
    private readonly cfg: HealthConfig,
    private readonly set: BackendSet,
    private readonly log: Logger,
    private readonly clock: Clock = monotonicClock,
    /** The balancer's own resource errors: a probe that hits one gives no verdict. */
    private readonly localErrors: LocalErrors | null = null,
    random: () => number = Math.random,
    /** The service's backend_tls; probes use it when health.tls is on. */
    backendTls: BackendTls | null = null,
  ) {
    this.tls = cfg.tls ? backendTls : null;
    this.steps = stepsFor(cfg);
    this.loop = new BackendLoop(set, cfg.intervalMs, (b) => this.probe(b), random);
  }

  get enabled(): boolean {
    return this.cfg.kind !== 'none';
  }

  start(): void {
    if (this.enabled) this.loop.start();
  }

  /** Starts probing a backend added at run time. */
  watch(b: Backend): void {
    this.loop.watch(b);
  }

  stop(): void {
    this.loop.stop();
  }

  /** Probes every backend now (the manual hook); resolves when all verdicts are in. */
  async checkAll(): Promise<void> {
    if (this.enabled) await this.loop.runAll();
  }

  private async probe(b: Backend): Promise<void> {
    // Paused by an operator (admin API): no probe at all until resumed.
    if (b.checksPaused) return;
    const r = await this.runProbe(b);
    this.log.trace({ backend: b.address, ok: r.ok, detail: r.detail, ms: r.latencyMs }, 'probe');
    if (!r.ok && this.localErrors?.claim(r.detail, 'probe', b.address)) return;
    this.set.reportProbe(b, r.ok, r.detail, r.latencyMs);
  }

  private runProbe(b: Backend): Promise<ProbeResult> {
    const { cfg } = this;
    const target: ProbeTarget =
      cfg.address === null && cfg.port === null
        ? b
        : { host: cfg.address ?? b.host, port: cfg.port ?? b.port };
    if (cfg.login) {
      const d =
        cfg.kind === 'mysql'
          ? new MysqlLogin(cfg.login)
          : new PostgresLogin(cfg.login, this.salted);
      const ok = `${cfg.kind} login ok`;
      return holdDialogue(target, d, cfg.timeoutMs, ok, this.clock, this.tls);
    }
    if (this.steps)
      return converse(target, this.steps, cfg.timeoutMs, `${cfg.kind} ok`, this.clock, this.tls);
    return cfg.kind === 'http'
      ? httpProbe({ ...target, address: b.address }, cfg.path, cfg.timeoutMs, this.clock, this.tls)
      : tcpProbe(target, cfg.timeoutMs, this.clock, this.tls);
  }
}
