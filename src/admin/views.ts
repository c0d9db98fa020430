import type { Backend } from '../backend/backend.js';
import type { LoadBalancer } from '../load-balancer.js';
import type { Service } from '../service.js';

export interface BackendView {
  address: string;
  /** Its name (config `name`, or discovery's); its address when none was given. */
  name: string;
  state: Backend['state'];
  /** Why it is not up: the health verdict, or the operator's action. */
  reason: string | null;
  weight: number;
  backup: boolean;
  /** Its zone, from discovery (kind = "kubernetes"); null: not known. */
  zone: string | null;
  active: number;
  sessionsTotal: number;
  dialFailuresTotal: number;
  sessionsAbortedTotal: number;
  /** Open sessions included, read from their sockets now. */
  bytesToBackend: number;
  bytesFromBackend: number;
  /** An operator paused its health checks (admin API). */
  checksPaused: boolean;
  poolIdle: number;
  lastCheck: { ok: boolean; detail: string; latencyMs: number; at: string } | null;
  /** The last probe that failed, kept after later successes. */
  lastFailure: { detail: string; at: string } | null;
  /** The agent check's last contact (health.agent_port), null without one. */
  agent: { ok: boolean; reply: string; at: string } | null;
  /** HTTP requests through lb.request / lb.dispatcher (null: none yet), apart from sessions. */
  http: HttpBackendView | null;
}

export interface HttpBackendView {
  requests: number;
  successes: number;
  failures: number;
  latency: { count: number; sumSeconds: number; buckets: { le: number | '+Inf'; count: number }[] };
}

function httpView(svc: Service, b: Backend): HttpBackendView | null {
  const s = svc.httpStats.of(b);
  if (!s) return null;
  const h = s.latency;
  return {
    requests: s.requests,
    successes: s.successes,
    failures: s.failures,
    latency: {
      count: h.count,
      sumSeconds: h.sum,
      buckets: [...h.counts].map((count, i) => ({ le: h.bounds[i] ?? '+Inf', count })),
    },
  };
}

/**
 * Bytes carried to and from `b`, open sessions included (read from their
 * sockets now), as /metrics counts them: a long session grows as it runs.
 */
function liveBytes(svc: Service, b: Backend): { to: number; from: number } {
  let to = b.bytesToBackend;
  let from = b.bytesFromBackend;
  for (const s of svc.openSessions) {
    if (s.target !== b || !s.backend) continue;
    to += s.backend.bytesWritten;
    from += s.backend.bytesRead;
  }
  return { to, from };
}

export function backendView(svc: Service, b: Backend): BackendView {
  const bytes = liveBytes(svc, b);
  const reason =
    b.state === 'disabled'
      ? 'disabled by operator'
      : b.state === 'draining'
        ? 'drained by operator'
        : b.healthy
          ? null
          : b.downReason;
  return {
    address: b.address,
    name: b.name,
    state: b.state,
    reason,
    weight: b.weight,
    backup: b.backup,
    zone: b.zone,
    active: b.active,
    sessionsTotal: b.sessionsTotal,
    dialFailuresTotal: b.dialFailuresTotal,
    sessionsAbortedTotal: b.sessionsAbortedTotal,
    bytesToBackend: bytes.to,
    bytesFromBackend: bytes.from,
    checksPaused: b.checksPaused,
    poolIdle: svc.pool.idleFor(b),
    lastCheck: b.lastCheck
      ? {
          ...b.lastCheck,
          latencyMs: Math.round(b.lastCheck.latencyMs * 100) / 100,
          at: new Date(b.lastCheck.at).toISOString(),
        }
      : null,
    lastFailure: b.lastFailure
      ? { detail: b.lastFailure.detail, at: new Date(b.lastFailure.at).toISOString() }
      : null,
    agent: b.lastAgent
      ? {
          ok: b.lastAgent.ok,
          reply: b.lastAgent.detail,
          at: new Date(b.lastAgent.at).toISOString(),
        }
      : null,
    http: httpView(svc, b),
  };
}

/** A service's [discovery]: what it looks up, what it found, how lookups fare. */
export interface DiscoveryView {
  kind: string;
  target: string;
  /** Discovered backends in rotation now (a static backend at the same address is the file's). */
  backends: number;
  /** Discovered backends that left the answer, draining until their sessions end. */
  leaving: number;
  failures: number;
  /** Lookups failed in a row up to now (0: the last one answered). */
  failing: number;
  lastSuccess: string | null;
  lastError: string | null;
  lastErrorAt: string | null;
}

export function discoveryView(svc: Service): DiscoveryView | null {
  const d = svc.discoveryStatus;
  if (!d) return null;
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return {
    kind: d.kind,
    target: d.target,
    backends: d.backends,
    leaving: d.leaving,
    failures: d.failures,
    failing: d.failing,
    lastSuccess: iso(d.lastSuccessAt),
    lastError: d.lastError,
    lastErrorAt: iso(d.lastErrorAt),
  };
}

export interface ServiceView {
  name: string;
  listen: string;
  balance: string;
  health: string;
  discovery: DiscoveryView | null;
  activeSessions: number;
  /** Clients waiting for a backend slot now, and the longest wait so far. */
  queue: { length: number; longestWaitMs: number };
  counters: Service['counters'];
  pool: { hits: number; misses: number; idle: number };
  /** HTTP requests sent again to another backend (lb.request / lb.dispatcher). */
  httpRetries: number;
  backends: BackendView[];
}

export function serviceView(svc: Service): ServiceView {
  const a = svc.address();
  return {
    name: svc.name,
    // A listen list shows each address (bound ports once bound), comma-separated.
    listen: [
      `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`,
      ...svc.extraListeners.map((l, i) => {
        const b = l.address();
        return b
          ? `${b.family === 'IPv6' ? `[${b.address}]` : b.address}:${b.port}`
          : (svc.cfg.alsoListen[i]?.address ?? '');
      }),
    ].join(', '),
    balance: svc.cfg.balance,
    health: svc.cfg.health.kind,
    discovery: discoveryView(svc),
    activeSessions: svc.activeSessions,
    queue: svc.queueNow(),
    counters: { ...svc.counters },
    pool: {
      hits: svc.pool.counters.hits,
      misses: svc.pool.counters.misses,
      idle: svc.pool.idleCount,
    },
    httpRetries: svc.httpStats.retries,
    backends: svc.backends.all.map((b) => backendView(svc, b)),
  };
}

export function servicesView(lb: LoadBalancer): { services: ServiceView[] } {
  return { services: lb.allServices.map(serviceView) };
}
