import { DEFAULT_LATENCY_DECAY_MS } from '../balancer/least-latency-defaults.js';
import { durationOf, type Problems } from './fields.js';

/** `latency_decay` (a service key): how fast least-latency forgets a latency it measured. */
export const LATENCY_DECAY_FIELD = {
  kind: 'duration',
  min: 100,
  max: 3_600_000,
  // No spec default: the key may only be written beside least-latency, so `check --print` shows it only there.
  doc: 'least-latency only: the time constant over which a measured latency decays (default "10s", as Finagle and Linkerd)',
} as const;

/** latency_decay: a duration, and only beside balance = "least-latency" (elsewhere it would silently do nothing). */
export function parseLatencyDecay(v: unknown, path: string, balance: string, p: Problems): number {
  const ms = durationOf(LATENCY_DECAY_FIELD, v, path, p, DEFAULT_LATENCY_DECAY_MS);
  if (v !== undefined && balance !== 'least-latency')
    p.add(path, `applies to balance = "least-latency" only; this service balances by "${balance}"`);
  return ms;
}
