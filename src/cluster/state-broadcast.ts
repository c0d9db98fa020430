import type { BackendConfig } from '../config/schema.js';
import type { LoadBalancer } from '../load-balancer.js';
import type { DiscoveredMap, MembersMap, StateMap, ToWorker } from './messages.js';

/** Every service's backend state in the primary, whose verdicts are the ones in force. */
export function stateMap(lb: LoadBalancer): StateMap {
  return Object.fromEntries(lb.allServices.map((s) => [s.name, s.backends.snapshot()]));
}

/**
 * Every service's discovered backends in the primary, where discovery runs
 * (once, not in each worker, so every worker serves the same list). A
 * service without [discovery] sends an empty list, which drains any a
 * worker still has from before a reload removed it.
 */
export function discoveredMap(lb: LoadBalancer): DiscoveredMap {
  return Object.fromEntries(lb.allServices.map((s) => [s.name, s.discoveredBackends]));
}

/** Every backend of every service in the primary, as configs a worker can add (see MembersMap). */
export function membersMap(lb: LoadBalancer): MembersMap {
  return Object.fromEntries(
    lb.allServices.map((s) => [
      s.name,
      s.backends.all.map(
        (b): BackendConfig => ({
          address: b.address,
          host: b.host,
          port: b.port,
          weight: s.baseWeight(b),
          backup: b.backup,
          maxConnections: b.maxConnections,
          maxRate: b.maxRate,
          slowStartMs: b.slowStartMs,
          ...(b.zone === null ? {} : { zone: b.zone }),
          ...(b.name === b.address ? {} : { name: b.name }),
        }),
      ),
    ]),
  );
}

/**
 * Coalesces a burst of backend changes into one broadcast, sent after the
 * current tick: a reload or a probe round can change many backends at once,
 * and each worker needs only the state they end in.
 */
export class StateBroadcast {
  private queued = false;

  constructor(
    /** Read when the broadcast goes out, not when it is queued. */
    private readonly snapshot: () => StateMap,
    private readonly discovered: () => DiscoveredMap,
    private readonly members: () => MembersMap,
    private readonly send: (m: ToWorker) => void,
  ) {}

  queue(): void {
    if (this.queued) return;
    this.queued = true;
    setImmediate(() => {
      this.queued = false;
      this.send({
        t: 'state',
        services: this.snapshot(),
        discovered: this.discovered(),
        members: this.members(),
      });
    });
  }
}
