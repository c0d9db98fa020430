import type { Backend } from '../backend/backend.js';
import type { BackendSet } from '../backend/backend-set.js';
import { type Clock, monotonicClock } from '../clock.js';
import type { HealthConfig } from '../config/schema.js';
import type { LocalErrors } from '../local-errors.js';
import type { Logger } from '../logger.js';
import { type Connector, PLAIN, type Upstream } from '../upstream/connector.js';
import { holdDialogue } from './dialogue.js';
import { converse, type Step, thrown } from './exchange.js';
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
    /** The service's connector, read at each probe; its TLS is used when health.tls is on. */
    private readonly upstream: Upstream | null = null,
  ) {
    this.steps = stepsFor(cfg);
    this.loop = new BackendLoop(set, cfg.intervalMs, (b) => this.probe(b), random);
  }

  get enabled(): boolean {
    return this.cfg.kind !== 'none';
  }

  start(): void {
    if (this.enabled) this.loop.start();
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
    let r: ProbeResult;
    try {
      r = await this.runProbe(b);
    } catch (err) {
      // Whatever a probe's code throws is this backend's failed check, never the process's end.
      const detail = `${this.cfg.kind} probe failed (${thrown(err)})`;
      r = { ok: false, detail, latencyMs: 0, cause: 'bad-reply' };
    }
    this.log.trace({ backend: b.address, ok: r.ok, detail: r.detail, ms: r.latencyMs }, 'probe');
    if (!r.ok && this.localErrors?.claim(r.detail, 'probe', b.address)) return;
    this.set.reportProbe(b, r.ok, r.detail, r.latencyMs, r.cause);
  }

  /** How a probe connects: the service's connector, with TLS only when health.tls is on. */
  private get via(): Connector {
    const c = this.upstream?.connector ?? PLAIN;
    return this.cfg.tls ? c : c.plain;
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
      return holdDialogue(target, d, cfg.timeoutMs, ok, this.clock, this.via);
    }
    if (this.steps)
      return converse(target, this.steps, cfg.timeoutMs, `${cfg.kind} ok`, this.clock, this.via);
    return cfg.kind === 'http'
      ? httpProbe({ ...target, address: b.address }, cfg.path, cfg.timeoutMs, this.clock, this.via)
      : tcpProbe(target, cfg.timeoutMs, this.clock, this.via);
  }
}
