import { type BackendSet, setOptionsOf } from '../backend/backend-set.js';
import { sameConfig } from '../config/same.js';
import type { ServiceConfig } from '../config/schema.js';
import type { DiscoveryDriver } from '../discovery/index.js';
import type { BackendOps } from './backend-ops.js';
import type { ControlPlane } from './control-plane.js';
import type { DataPlane } from './data-plane.js';

/** What a reload step changes: the service's parts, each half absent where this process has none. */
export interface Reloadable {
  readonly data: DataPlane | null;
  readonly control: ControlPlane | null;
  readonly ops: BackendOps;
  readonly backends: BackendSet;
  readonly discovered: DiscoveryDriver;
  readonly running: boolean;
  /** A new strategy of the configured kind (under the stick table, if any), fed the current candidates. */
  replaceStrategy(next: ServiceConfig, prev: ServiceConfig): void;
  /** New backend_tls settings: new dials use them at once. */
  replaceConnector(next: ServiceConfig, prev: ServiceConfig): void;
}

/**
 * One step of a reload: the part of the config it reads (`slice`; it runs
 * when that part changed, or on every reload when `every`), and how it
 * applies the new config in place. A step returns a problem to report
 * (certificates that failed to load and were kept), or nothing.
 */
export interface ReloadStep {
  readonly name: string;
  readonly slice: ((c: ServiceConfig) => unknown) | 'every';
  readonly apply: (
    s: Reloadable,
    next: ServiceConfig,
    prev: ServiceConfig,
  ) => string | null | undefined;
}

/**
 * Every reload runs these, in this order (backend TLS before the probes and
 * the pool that use it). Open sessions are never cut, except by
 * apply_to_open, which asks for it.
 */
export const RELOAD_STEPS: readonly ReloadStep[] = [
  // Certificates are re-read on every reload: a renewed one keeps its file name.
  { name: 'tls', slice: 'every', apply: (s, next) => s.data?.applyTls(next) },
  { name: 'admission', slice: 'every', apply: (s, next) => void s.data?.admission.configure(next) },
  {
    name: 'apply_to_open',
    slice: (c) => [c.allow, c.deny],
    apply: (s, next) => void (next.applyToOpen ? s.data?.endRefused() : undefined),
  },
  {
    name: 'queue',
    slice: 'every',
    apply: (s, next) => void s.data?.dialer.queue.configure(next.queueSize, next.queueTimeoutMs),
  },
  {
    name: 'backend settings',
    slice: 'every',
    apply: (s, next) => void s.backends.setOptions(setOptionsOf(next)),
  },
  { name: 'backends', slice: 'every', apply: (s, next) => void s.ops.syncFile(next.backends) },
  {
    name: 'discovery',
    slice: (c) => c.discovery,
    apply: (s, next) => {
      s.control?.restartDiscovery(next);
      // No discovery any more: its backends drain.
      if (!next.discovery) s.discovered.apply([]);
      return null;
    },
  },
  {
    name: 'balance',
    slice: (c) => [c.balance, c.hashBalanceFactor, c.latencyDecayMs, c.stick, c.routes],
    apply: (s, next, prev) => void s.replaceStrategy(next, prev),
  },
  {
    name: 'connector',
    slice: (c) => [c.backendTls, c.connectTimeoutMs],
    apply: (s, next, prev) => void s.replaceConnector(next, prev),
  },
  {
    name: 'backend_tls',
    slice: (c) => c.backendTls,
    apply: (s) => void s.data?.dropHttpConnections(),
  },
  {
    name: 'health',
    slice: (c) => [c.backendTls, c.health],
    apply: (s, next) => {
      s.control?.restartHealth(next);
      // No agent any more: nothing would ever lift what the old one held down.
      if (!next.health.agent) for (const b of s.backends.all) s.backends.holdDown(b, null);
      return null;
    },
  },
  {
    name: 'pool',
    // The old pool's sockets were handshaken under the old settings: closed, never handed out.
    slice: (c) => [c.backendTls, c.pool, c.connectTimeoutMs, c.retryDelayMs],
    apply: (s, next) => void s.data?.restartPool(next, s.running),
  },
];

/** Applies `next` over `prev` step by step; the problems the steps reported, joined (null: none). */
export function runReloadSteps(
  s: Reloadable,
  prev: ServiceConfig,
  next: ServiceConfig,
): string | null {
  let problem: string | null = null;
  for (const step of RELOAD_STEPS) {
    if (step.slice !== 'every' && sameConfig(step.slice(next), step.slice(prev))) continue;
    problem ??= step.apply(s, next, prev) ?? null;
  }
  return problem;
}
