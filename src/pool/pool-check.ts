import type { PoolConfig, ServiceConfig } from '../config/schema.js';

/*
 * What `blitz-lb check` says about a service's warm pool: its size as the
 * backend sees it (each worker keeps its own pool), and the backends a
 * pre-opened socket is known to bother.
 */

/** "min_idle 2 max_idle 10", and with workers what one backend holds open in all. */
export function poolSummary(p: PoolConfig, workers: number): string {
  const size = `min_idle ${p.minIdle} max_idle ${p.maxIdle}`;
  if (p.minIdle === 0 || workers <= 1) return size;
  return `${size} (${workers} workers: ${p.minIdle * workers}-${p.maxIdle * workers} idle connections per backend)`;
}

export interface PoolWarning {
  readonly path: string;
  readonly message: string;
}

/**
 * MySQL and MariaDB count every connection closed before it logs in (an
 * Aborted_connects, a warning line, and where the server counts them,
 * towards max_connect_errors, which blocks the balancer's address): a
 * pooled socket that retires unused is one, and so is the greeting probe.
 */
export function poolWarnings(s: ServiceConfig, workers: number): PoolWarning[] {
  const out: PoolWarning[] = [];
  const at = `services.${s.name}`;
  if (s.health.kind === 'mysql' && s.pool.minIdle > 0)
    out.push({
      path: `${at}.pool.min_idle`,
      message: `${s.pool.minIdle}${workers > 1 ? ` (x${workers} workers)` : ''}: MySQL and MariaDB count each pooled connection that retires unused as an aborted connect (Aborted_connects, a warning line, max_connect_errors); set pool.min_idle = 0 for this service, or accept it`,
    });
  if (s.health.kind === 'mysql' && s.health.login === null)
    out.push({
      path: `${at}.health.kind`,
      message:
        'mysql without user: the probe closes after the greeting, which MySQL and MariaDB count as an aborted connect every interval; set health.user to a user that may log in (it logs in and quits)',
    });
  return out;
}
