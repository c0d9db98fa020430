import type { AdminListen } from '../config/admin.js';
import type { ReloadSummary } from '../load-balancer.js';
import type { Logger } from '../logger.js';
import type { AdminCluster } from './api.js';
import type { ReloadLog } from './reload-log.js';

export interface AdminOptions {
  /** "host:port", or a Unix socket (its file created with `mode`, removed at close). */
  listen: AdminListen;
  /** When set, write calls need `Authorization: Bearer <token>`. */
  token: string | null;
  /** When set, reads (/metrics, GET /api/*) need this token or `token`. */
  readToken?: string | null;
  /**
   * Host header values accepted besides the listen address and loopback names,
   * as a browser sends them: "lb.internal:9900", or "lb.internal" behind port 80.
   */
  allowedHosts?: readonly string[];
  /** Re-reads the config and applies it; rejects with the reason when the file is invalid. */
  reload: (() => Promise<ReloadSummary>) | null;
  /** Where every reload (SIGHUP's too) is recorded; one of its own when omitted. */
  reloads?: ReloadLog;
  log: Logger;
  /** With workers: views and metrics gathered from every process (see cluster/reports.ts). */
  cluster?: AdminCluster | null;
  /** /readyz, drain and upgrade (lifecycle/lifecycle.ts); absent: /readyz checks backends only. */
  lifecycle?: AdminLifecycle | null;
  /** A listening socket passed to the process (an upgrade's) to serve on instead of binding `listen`. */
  fd?: number | null;
}

/** What the lifecycle routes need (see lifecycle/lifecycle.ts and cli.ts). */
export interface AdminLifecycle {
  /** Why /readyz says 503 (draining, stopping, handed over); null: nothing stops it. */
  notReadyBecause(): string | null;
  readonly draining: boolean;
  drain(): void;
  undrain(): void;
  /** Resolves with the new process's PID once it serves (this one then retires); LB_ERR_STATE when one cannot start now. */
  upgrade(): Promise<number>;
}
