import type { Registry } from 'prom-client';
import { createRegistry } from '../admin/metrics.js';
import { sessionQuery } from '../admin/sessions.js';
import { servicesView } from '../admin/views.js';
import type { BackendConfig } from '../config/schema.js';
import { HandedSockets } from '../lifecycle/passed-sockets.js';
import { socketHandle } from '../lifecycle/socket-handle.js';
import { LoadBalancer } from '../load-balancer.js';
import { createLogger, type Logger } from '../logger.js';
import { bindWithReusePort } from '../proxy/listener.js';
import type { DiscoveredMap, FromWorker, MembersMap, StateMap, ToWorker } from './messages.js';
import { backendShare, workerShare } from './share.js';

/**
 * A cluster worker (forked by ClusterPrimary, started by worker-main.ts): it
 * runs the listeners, sessions and warm pools of every service, takes
 * backend health from the primary, and reports its dial outcomes back.
 * It never reads the config file and never probes.
 */
export class ClusterWorker {
  private lb: LoadBalancer | null = null;
  private registry: Registry | null = null;
  private log: Logger | null = null;
  private stopping: Promise<void> | null = null;
  /** Workers running (fixed until a restart of the whole balancer), for the share of each limit. */
  private workers = 1;
  /** This worker's slot (1..workers): the lowest slots take the units a limit does not divide evenly. */
  private slot = 1;
  /** Sockets the primary holds for this worker, by listen address (sent before `init`). */
  private readonly handles = new Map<string, object[]>();

  /** Wires the IPC channel and signals; the primary's `init` message does the rest. */
  attach(): void {
    process.on('message', (m: ToWorker, handle: unknown) => {
      if (m.t === 'socket') {
        if (handle) {
          const list = this.handles.get(m.address) ?? [];
          list.push(handle as object);
          this.handles.set(m.address, list);
        }
        return;
      }
      this.onMessage(m).catch((err: Error) => {
        this.log?.error({ err }, 'worker: message handling failed');
      });
    });
    // SIGHUP is the primary's (a terminal hang-up reaches the whole group; the default would kill us).
    process.on('SIGHUP', () => {});
    // SIGUSR2 (upgrade) is the primary's too; its default would kill a worker that `kill` or
    // `systemctl kill` reached with the rest of the group.
    process.on('SIGUSR2', () => {});
    // Ctrl-C reaches every process of the group: drain as the primary asks anyway.
    process.on('SIGINT', () => void this.stop(undefined));
    process.on('SIGTERM', () => void this.stop(undefined));
    // No 'disconnect' handler: if the primary dies, Node's cluster code exits the worker at
    // once (see nodejs/node test/parallel/test-cluster-worker-forced-exit.js), so nothing
    // serves without a primary.
    this.send({ t: 'hello' });
  }

  private send(m: FromWorker): void {
    if (process.connected) process.send?.(m);
  }

  private async onMessage(m: ToWorker): Promise<void> {
    switch (m.t) {
      case 'init':
        return this.init(m.slot, m);
      case 'state':
        this.applyState(m.services, m.discovered, m.members);
        return;
      case 'sessions':
        return this.reply(m.id, async () => sessionQuery(this.lb as LoadBalancer, m.q, this.slot));
      case 'reload':
        return this.reply(m.id, async () => {
          const lb = this.lb as LoadBalancer;
          const summary = await lb.reload(workerShare(m.config, this.workers, this.slot));
          // Before the reply (IPC keeps the order): the primary holds the new sockets first.
          this.sendHandles(lb);
          return summary;
        });
      case 'query':
        return this.reply(m.id, async () => {
          const lb = this.lb as LoadBalancer;
          if (m.what === 'view') return { pid: process.pid, ...servicesView(lb) };
          this.registry ??= createRegistry(lb);
          return this.registry.getMetricsAsJSON();
        });
      case 'stop':
        return this.stop(m.timeoutMs);
    }
  }

  private async init(slot: number, m: Extract<ToWorker, { t: 'init' }>): Promise<void> {
    this.log = createLogger(m.logLevel).child({ worker: slot });
    bindWithReusePort(m.reusePort);
    this.workers = m.workers;
    this.slot = slot;
    const lb = new LoadBalancer(workerShare(m.config, this.workers, this.slot), {
      sockets: new HandedSockets(this.handles),
      logger: this.log,
      role: 'serve',
      followConfigLogLevel: m.followConfigLogLevel,
      workerSlot: slot,
      follower: (service) => ({
        dialFailed: (b, cause) =>
          this.send({ t: 'dial', service, backend: b.address, ok: false, cause }),
        dialSucceeded: (b) =>
          this.send({ t: 'dial', service, backend: b.address, ok: true, cause: '' }),
      }),
    });
    this.lb = lb;
    this.applyState(m.state, m.discovered, m.members);
    try {
      await lb.start();
    } catch (err) {
      this.send({ t: 'fatal', message: (err as Error).message });
      this.log.flush();
      process.exit(1);
    }
    this.sendHandles(lb);
    this.send({ t: 'ready' });
  }

  /**
   * Sends a copy of each listening socket to the primary, which holds it for
   * this slot's next worker and for an upgrade (held-sockets.ts). With
   * NODE_CLUSTER_SCHED_POLICY=rr (no SO_REUSEPORT) the worker's handle is a
   * stand-in that cannot be sent: it is skipped, and an upgrade says so.
   */
  private sendHandles(lb: LoadBalancer): void {
    for (const [address, server] of lb.listeningServers()) {
      const handle = socketHandle(server);
      if (!handle || !process.connected) continue;
      try {
        process.send?.({ t: 'handle', address } satisfies FromWorker, handle as never);
      } catch (err) {
        this.log?.debug({ address, reason: (err as Error).message }, 'listening socket not sent');
      }
    }
  }

  /** The primary's discovered backends first (this worker's share of their limits), then its verdicts. */
  private applyState(map: StateMap, discovered: DiscoveredMap, members: MembersMap): void {
    const lb = this.lb;
    if (!lb) return;
    const share = (b: BackendConfig) => backendShare(b, this.workers, this.slot);
    for (const [name, list] of Object.entries(discovered)) {
      const svc = lb.allServices.find((s) => s.name === name);
      svc?.applyDiscovered(list.map(share));
    }
    for (const [name, list] of Object.entries(members)) {
      lb.allServices.find((s) => s.name === name)?.followMembers(list.map(share));
    }
    for (const [name, states] of Object.entries(map)) {
      const svc = lb.allServices.find((s) => s.name === name);
      if (!svc) continue;
      svc.applyBackendState(states);
    }
  }

  private async reply(id: number, f: () => Promise<unknown>): Promise<void> {
    try {
      this.send({ t: 'reply', id, ok: true, data: await f() });
    } catch (err) {
      this.send({ t: 'reply', id, ok: false, error: (err as Error).message });
    }
  }

  /** Drains (timeoutMs undefined: the configured shutdown_timeout; 0: now), then exits 0. */
  private stop(timeoutMs: number | undefined): Promise<void> {
    const lb = this.lb;
    if (!lb) process.exit(0);
    if (this.stopping) {
      if (timeoutMs === 0) void lb.close(0);
      return this.stopping;
    }
    this.stopping = lb.close(timeoutMs).then(() => {
      this.log?.flush();
      process.exit(0);
    });
    return this.stopping;
  }
}
