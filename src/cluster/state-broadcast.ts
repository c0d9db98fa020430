import type { LoadBalancer } from '../load-balancer.js';
import type { StateMap, ToWorker } from './messages.js';

/** Every service's backend state in the primary, whose verdicts are the ones in force. */
export function stateMap(lb: LoadBalancer): StateMap {
  return Object.fromEntries(lb.allServices.map((s) => [s.name, s.backends.snapshot()]));
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
    private readonly send: (m: ToWorker) => void,
  ) {}

  queue(): void {
    if (this.queued) return;
    this.queued = true;
    setImmediate(() => {
      this.queued = false;
      this.send({ t: 'state', services: this.snapshot() });
    });
  }
}
