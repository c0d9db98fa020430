import type { ServiceConfig } from '../config/schema.js';
import {
  createDiscovery,
  type DiscoveryDriver,
  type DiscoveryRunner,
  type DiscoveryStatus,
} from '../discovery/index.js';
import { AgentChecker, type AgentTarget } from '../health/agent.js';
import { HealthChecker } from '../health/checker.js';
import type { ServiceCore } from './core.js';

/**
 * The half of a service that watches its backends: health probes, the agent
 * check and discovery. A single process has it, and so does the cluster
 * primary; a worker has none (it takes the primary's verdicts and lists).
 */
export class ControlPlane {
  private health: HealthChecker;
  /** health.agent_port's loop; null when none is configured. */
  private agent: AgentChecker | null;
  /** Looks the backends up ([discovery]); null without one. */
  private discovery: DiscoveryRunner | null;
  private running = false;

  constructor(
    private readonly core: ServiceCore,
    /** The agent's words change backends through the service's backend operations. */
    private readonly agentTarget: AgentTarget,
    private readonly discovered: DiscoveryDriver,
  ) {
    // The primary (or a single process) decides and logs health; a worker hears its verdicts.
    // Prepended: the verdict is logged before what follows from it (on_down ending sessions).
    core.backends.prependListener('down', (b, reason) =>
      core.log.warn({ backend: b.address, reason }, 'backend down'),
    );
    core.backends.prependListener('up', (b) => core.log.info({ backend: b.address }, 'backend up'));
    this.health = this.createHealth(core.cfg);
    this.agent = this.createAgent(core.cfg);
    this.discovery = this.createDiscovery(core.cfg);
  }

  /** What discovery found and how it fares, for /api/services and /metrics; null without [discovery]. */
  get discoveryStatus(): (DiscoveryStatus & { backends: number; leaving: number }) | null {
    if (!this.discovery) return null;
    const { current, leavingCount } = this.discovered;
    return { ...this.discovery.status, backends: current.length, leaving: leavingCount };
  }

  start(): void {
    this.running = true;
    this.discovery?.start();
    this.health.start();
    this.agent?.start();
  }

  stop(): void {
    this.running = false;
    this.discovery?.stop();
    this.health.stop();
    this.agent?.stop();
  }

  /** Runs one round of probes (and agent checks) now; resolves when all verdicts are in. */
  async probeNow(): Promise<void> {
    await Promise.all([this.health.checkAll(), this.agent?.checkAll()]);
  }

  /** Health probes now, not an interval later (a backend's checks resumed). */
  probeAll(): void {
    void this.health.checkAll();
  }

  /** New health settings (or backend TLS, which probes use): the probes and the agent start over. */
  restartHealth(next: ServiceConfig): void {
    this.health.stop();
    this.health = this.createHealth(next);
    this.agent?.stop();
    this.agent = this.createAgent(next);
    if (!this.running) return;
    this.health.start();
    this.agent?.start();
  }

  /**
   * New discovery settings: the old lookup stops, the new one starts, and
   * its first answer is diffed against what the old one found (nothing is
   * drained and re-added).
   */
  restartDiscovery(next: ServiceConfig): void {
    this.discovery?.stop();
    this.discovery = this.createDiscovery(next);
    if (this.running) this.discovery?.start();
  }

  private createHealth(cfg: ServiceConfig): HealthChecker {
    const { backends, log, clock, localErrors } = this.core;
    return new HealthChecker(cfg.health, backends, log, clock, localErrors, Math.random, this.core);
  }

  private createAgent(cfg: ServiceConfig): AgentChecker | null {
    const a = cfg.health.agent;
    return a ? new AgentChecker(a, cfg.health.timeoutMs, this.agentTarget, this.core.log) : null;
  }

  private createDiscovery(cfg: ServiceConfig): DiscoveryRunner | null {
    if (!cfg.discovery) return null;
    const d = this.discovered;
    return createDiscovery(cfg.discovery, (list) => d.apply(list), this.core.log, this.core.clock);
  }
}
