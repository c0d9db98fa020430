/**
 * The performance goals (issue 14; the TLS rows: issue 15), one table: each row is a ratio of a
 * blitz-lb figure to a peer's, measured in the same run, and the bound it
 * must meet. `npm run bench` prints each with met / missed.
 */
export interface Goal {
  row: string;
  scenario: 'keep-alive' | 'churn' | 'bulk' | 'idle' | 'tls-handshake' | 'tls-keep-alive';
  /** cpuUs: per request, connection or handshake; kib: idle memory per session; bulk: mean of both ways; rps: handshakes/s under tls-handshake. */
  figure: 'cpuUs' | 'rps' | 'kibPerSession' | 'bulkMean' | 'p99';
  target: string;
  peer: string;
  /** target / peer must be at most (<=) or at least (>=) `bound`. */
  op: '<=' | '>=';
  bound: number;
}

export const GOALS: readonly Goal[] = Object.freeze([
  g('churn: CPU per connection vs node-tcp-proxy', 'churn', 'cpuUs', 'node-tcp-proxy', '<=', 0.85),
  g('churn: CPU per connection vs HAProxy', 'churn', 'cpuUs', 'haproxy', '<=', 1.8),
  g(
    'idle: memory per session vs node-tcp-proxy (pool on)',
    'idle',
    'kibPerSession',
    'node-tcp-proxy',
    '<=',
    1.0,
  ),
  g(
    'idle: memory per session vs node-tcp-proxy (pool off)',
    'idle',
    'kibPerSession',
    'node-tcp-proxy',
    '<=',
    1.0,
    'blitz-lb (pool off)',
  ),
  g('idle: memory per session vs HAProxy', 'idle', 'kibPerSession', 'haproxy', '<=', 2.0),
  g(
    'keep-alive: CPU per request vs node-tcp-proxy',
    'keep-alive',
    'cpuUs',
    'node-tcp-proxy',
    '<=',
    0.85,
  ),
  g('keep-alive: CPU per request vs HAProxy', 'keep-alive', 'cpuUs', 'haproxy', '<=', 1.3),
  g('keep-alive: req/s vs node-tcp-proxy', 'keep-alive', 'rps', 'node-tcp-proxy', '>=', 1.2),
  g('bulk: Gbit/s vs HAProxy (mean of both ways)', 'bulk', 'bulkMean', 'haproxy', '>=', 1.0),
  g('keep-alive: p99 vs HAProxy (at most HAProxy’s)', 'keep-alive', 'p99', 'haproxy', '<=', 1.0),
  g('TLS termination: handshakes/s vs HAProxy', 'tls-handshake', 'rps', 'haproxy', '>=', 0.8),
  g('TLS keep-alive: CPU per request vs HAProxy', 'tls-keep-alive', 'cpuUs', 'haproxy', '<=', 1.5),
]);

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
