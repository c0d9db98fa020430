import type { Backend } from '../backend/backend.js';
import { literalTwins } from '../config/address.js';
import { sameConfig } from '../config/same.js';
import type { BackendConfig } from '../config/schema.js';

/** What the driver may do to its service's backends: Service's own backend operations. */
export interface BackendOps {
  get(address: string): Backend | undefined;
  /** `joining`: a backend that arrives after the first answer ramps up through slow_start. */
  add(cfg: BackendConfig, joining: boolean): void;
  reconfigure(cfg: BackendConfig): void;
  drain(address: string): void;
  undrain(address: string): void;
  remove(address: string): void;
  /** The file's `backends`: they win over a discovered backend at the same address. */
  statics(): readonly BackendConfig[];
}

/** How often a vanished backend's open sessions are looked at, to remove it once they end. */
const SWEEP_MS = 200;

/**
 * Applies a discovered list to a service as a diff: new backends are added
 * (probed and pooled like any other), changed ones reconfigured in place, and
 * vanished ones drained, then removed once their last session has ended.
 * Static `backends` are never touched, and it owns only what it added, so a
 * reload's sync of the file and this never undo each other. The same diff
 * runs in a cluster worker, fed the primary's list (see cluster/worker.ts).
 */
export class DiscoveryDriver {
  /** Discovered backends in the set now, by address, as last applied. */
  private readonly owned = new Map<string, BackendConfig>();
  /** Owned backends that left the answer: draining until their sessions end. */
  private readonly leaving = new Set<string>();
  private last: readonly BackendConfig[] = [];
  private applied = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly ops: BackendOps) {}

  /** The discovered backends in rotation (not leaving), as the cluster primary sends them. */
  get current(): BackendConfig[] {
    return [...this.owned.values()].filter((c) => !this.leaving.has(c.address));
  }

  get leavingCount(): number {
    return this.leaving.size;
  }

  owns(address: string): boolean {
    return this.owned.has(address);
  }

  /** The config discovery last applied to `address` (its weight is the one an agent's percentages are of). */
  configured(address: string): BackendConfig | undefined {
    return this.owned.get(address);
  }

  /** Makes the service's discovered backends `list` (static backends aside). */
  apply(list: readonly BackendConfig[]): void {
    const joining = this.applied;
    this.applied = true;
    this.last = list;
    const statics = new Set(this.ops.statics().map((c) => c.address));
    // An address the file now lists is the file's from here on.
    for (const address of [...this.owned.keys()]) {
      if (!statics.has(address)) continue;
      this.owned.delete(address);
      if (this.leaving.delete(address)) this.ops.undrain(address);
    }
    const want = new Map<string, BackendConfig>();
    for (const c of list)
      if (!statics.has(c.address) && !want.has(c.address)) want.set(c.address, c);
    for (const address of this.owned.keys()) {
      if (want.has(address) || this.leaving.has(address)) continue;
      this.leaving.add(address);
      if (this.ops.get(address)) this.ops.drain(address);
    }
    for (const [address, c] of want) {
      const prev = this.owned.get(address);
      // A name known to be a backend already here ("localhost:80" beside "127.0.0.1:80"): one endpoint, one backend.
      if (
        !prev &&
        !this.ops.get(address) &&
        literalTwins(c.host, c.port).some((a) => this.ops.get(a))
      )
        continue;
      if (!this.ops.get(address)) this.ops.add(c, joining);
      else {
        if (this.leaving.delete(address)) this.ops.undrain(address);
        if (!prev || !sameConfig(prev, c)) this.ops.reconfigure(c);
      }
      this.owned.set(address, c);
    }
    this.sweep();
  }

  /** A reload changed the static backends: re-applies the last list against them. */
  reconcile(): void {
    if (this.applied) this.apply(this.last);
  }

  /** Removes every vanished backend whose sessions have ended; looks again later while some remain. */
  private sweep(): void {
    for (const address of [...this.leaving]) {
      const b = this.ops.get(address);
      if (b && b.active > 0) continue;
      this.leaving.delete(address);
      this.owned.delete(address);
      if (b) this.ops.remove(address);
    }
    if (this.leaving.size === 0 || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.sweep();
    }, SWEEP_MS);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
