/**
 * The performance goals (issue 25, replacing those of issues 14 and 15), one table: each row is a ratio of a
 * blitz-lb figure to a peer's, measured in the same run, and the bound it
 * must meet. `npm run bench` prints each with met / missed.
 */
export interface Goal {
  row: string;
  scenario:
    | 'keep-alive'
    | 'churn'
    | 'bulk'
    | 'idle'
    | 'tls-handshake'
    | 'tls-keep-alive'
    | 'tls-pool';
  /** cpuUs: per request, connection or handshake; kib: idle memory per session; bulk: mean of both ways; rps: handshakes/s under tls-handshake; p50/p99: latency. */
  figure: 'cpuUs' | 'rps' | 'kibPerSession' | 'bulkMean' | 'p50' | 'p99';
  target: string;
  peer: string;
  /** target / peer must be at most (<=) or at least (>=) `bound`. */
  op: '<=' | '>=';
  bound: number;
}

/**
 * Issue 25's table (Node 24; the Node peer, node-tcp-proxy, on the same Node; HAProxy with
 * nbthread 1). The workers rows (sessions per worker within 45/55 in every round; churn CPU
 * per connection at most 1.1x one worker's) are checked by bench/workers.ts (WORKER_GOALS).
 */
export const GOALS: readonly Goal[] = Object.freeze([
  g('churn: CPU per connection vs HAProxy', 'churn', 'cpuUs', 'haproxy', '<=', 1.5),
  g('churn: CPU per connection vs node-tcp-proxy', 'churn', 'cpuUs', 'node-tcp-proxy', '<=', 0.8),
  g('keep-alive: CPU per request vs HAProxy', 'keep-alive', 'cpuUs', 'haproxy', '<=', 1.15),
  g(
    'keep-alive: CPU per request vs node-tcp-proxy',
    'keep-alive',
    'cpuUs',
    'node-tcp-proxy',
    '<=',
    0.85,
  ),
  g('keep-alive: p99 vs HAProxy (at most HAProxy’s)', 'keep-alive', 'p99', 'haproxy', '<=', 1.0),
  g('idle: memory per session vs HAProxy', 'idle', 'kibPerSession', 'haproxy', '<=', 2.0),
  g(
    'idle: memory per session vs node-tcp-proxy',
    'idle',
    'kibPerSession',
    'node-tcp-proxy',
    '<=',
    0.8,
  ),
  g('bulk: Gbit/s vs HAProxy (mean of both ways)', 'bulk', 'bulkMean', 'haproxy', '>=', 1.0),
  g(
    'TLS termination: CPU per handshake vs HAProxy',
    'tls-handshake',
    'cpuUs',
    'haproxy',
    '<=',
    1.2,
  ),
  g('TLS keep-alive: CPU per request vs HAProxy', 'tls-keep-alive', 'cpuUs', 'haproxy', '<=', 1.3),
  g('warm TLS pool: connect p50 vs pool off', 'tls-pool', 'p50', 'blitz-lb (pool off)', '<=', 0.7),
  g('warm TLS pool: connect p50 vs HAProxy', 'tls-pool', 'p50', 'haproxy', '<=', 1.0),
]);

/** bench/workers.ts: workers = 2 on SO_REUSEPORT against workers = 1, in one run. */
export const WORKER_GOALS = Object.freeze({
  /** Every round, each worker's share of the sessions lies within [min, 1 - min]. */
  minShare: 0.45,
  /** Churn CPU per connection, workers = 2 (reusePort) over workers = 1, at most this. */
  churnCpuRatio: 1.1,
});

function g(
  row: string,
  scenario: Goal['scenario'],
  figure: Goal['figure'],
  peer: string,
  op: Goal['op'],
  bound: number,
  target = 'blitz-lb',
): Goal {
  return { row, scenario, figure, target, peer, op, bound };
}
