import type { BackendConfig, ServiceConfig } from '../config/schema.js';
import type { DiscoveryDriver } from '../discovery/index.js';
import { LbError } from '../errors.js';
import type { ServiceCounters, SessionAccounting } from '../proxy/accounting.js';
import type { Listener, ListenerHost } from '../proxy/listener.js';
import type { Session } from '../proxy/session.js';
import type { TerminationCause } from '../proxy/session-host.js';
import type { LoadedPair } from '../proxy/tls/certificates.js';
import type { FrontTarget } from '../proxy/tls/front.js';
import type { ControlPlane } from './control-plane.js';
import type { DataPlane } from './data-plane.js';

const NO_SESSIONS: ReadonlySet<Session> = new Set();

/**
 * What a Service answers through its two halves (service.ts extends it):
 * the reads and calls of LoadBalancer, the admin API and /metrics, each a
 * line to the half that has it, with the answer of an absent half (no data
 * plane in the cluster primary, no control plane in a worker).
 */
export abstract class ServiceHalves {
  abstract readonly name: string;
  abstract cfg: ServiceConfig;
  abstract readonly stats: SessionAccounting;
  /** Listener, sessions, dialer, pool, TLS termination; null in the cluster primary. */
  abstract readonly data: DataPlane | null;
  /** Probes, agent, discovery; null in a cluster worker. */
  abstract readonly control: ControlPlane | null;
  /** Applies discovered lists to the backends (here or, in a worker, the primary's). */
  abstract readonly discovered: DiscoveryDriver;

  /** The data plane, or a clear error where this process has none (the cluster primary). */
  protected plane(what: string): DataPlane {
    if (this.data) return this.data;
    throw new LbError(
      'LB_ERR_STATE',
      `service ${this.name}: cannot ${what} in the cluster primary`,
    );
  }

  /** How its listener reaches it: straight to its sessions, or through a front (see proxy/tls/front.ts). */
  get listenerHost(): ListenerHost {
    return this.plane('take clients').sessions;
  }
  get frontTarget(): FrontTarget {
    return this.plane('take clients').sessions;
  }
  /** The listener this service serves from now (null in the control role). */
  get boundListener(): Listener | null {
    return this.data?.boundListener ?? null;
  }
  /** The discovered backends in rotation, as the cluster primary sends them to workers. */
  get discoveredBackends(): BackendConfig[] {
    return this.discovered.current;
  }
  get discoveryStatus(): ControlPlane['discoveryStatus'] {
    return this.control?.discoveryStatus ?? null;
  }
  /** The open sessions, oldest first (the admin API's list, /metrics' open bytes). */
  get openSessions(): ReadonlySet<Session> {
    return this.data?.sessions.all ?? NO_SESSIONS;
  }
  /** Ends one open session (admin API); false when no open session has that id. */
  endSession(id: number): boolean {
    return this.data?.sessions.endOne(id) ?? false;
  }
  queueNow(): { length: number; longestWaitMs: number } {
    return this.data?.queueNow() ?? { length: 0, longestWaitMs: 0 };
  }
  /** Ends the open sessions on one backend now (an operator disabled it; or on_down, on_up_primary). */
  endSessionsOn(address: string, cause: TerminationCause = 'shutdown'): number {
    return this.data?.sessions.endOn(address, cause) ?? 0;
  }
  /** Runs one round of probes (and agent checks) now; resolves when all verdicts are in. */
  async probeNow(): Promise<void> {
    await this.control?.probeNow();
  }
  /** Closes idle pooled sockets past idle_ttl now (refill replaces them). */
  reapPool(): void {
    this.data?.pool.reap();
  }
  /** Handshake failures by cause (all zero without [tls]). */
  get tlsFailures(): Readonly<Record<string, number>> {
    return this.data?.tlsFailures ?? {};
  }
  /** The certificates this service terminates TLS with (none without [tls], or where it does not serve). */
  get certificates(): readonly LoadedPair[] {
    return this.data?.certificates ?? [];
  }
  get counters(): ServiceCounters {
    return this.stats.counters;
  }
  setAccessLog(on: boolean, intervalMs = 0): void {
    this.stats.setAccessLog(on, intervalMs);
  }
  get activeSessions(): number {
    return this.data?.sessions.activeSessions ?? 0;
  }
  /** This process runs the health probes (not a cluster worker). */
  get runsProbes(): boolean {
    return this.control !== null;
  }
  /** This process accepts clients and keeps the warm pool (not the cluster primary). */
  get acceptsClients(): boolean {
    return this.data !== null;
  }
  /** Stops accepting new clients; nothing else. */
  stopAccepting(): void {
    this.data?.stopAccepting();
  }
  /** Resolves when every open session (and HTTP request under way) has ended. */
  async drained(): Promise<void> {
    await this.data?.drained();
  }
  destroySessions(): void {
    this.data?.destroySessions();
  }
  giveAwayListener(): Listener | null {
    return this.data?.giveAwayListener() ?? null;
  }
  /** The fallible half of a reload for [tls] (see DataPlane.checkTls). */
  checkTls(next: ServiceConfig): void {
    this.data?.checkTls(next);
  }
}
