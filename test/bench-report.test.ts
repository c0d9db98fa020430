import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GOALS } from '../bench/goals.js';
import { markdown, type Results, type Summary } from '../bench/lib/report.js';
import { slope } from '../bench/lib/scenarios.js';

test('bench: idle memory per session is the slope, so a fixed cost (the pool) is not in it', () => {
  // 40 MiB held regardless of sessions, 5 KiB a session: a two-point ratio from 0 would say more.
  const pts: [number, number][] = [0, 1000, 2000, 3000, 4000].map((n) => [n, 40 * 1024 + 5 * n]);
  assert.equal(slope(pts), 5);
  assert.ok(Number.isNaN(slope([[10, 1]])), 'one point has no slope');
});

test('bench: every goal is printed with its ratio in the run and met or missed', () => {
  const s = (o: Partial<Summary>): Summary => ({
    rps: 1000,
    p50: 1,
    p99: 4,
    errors: 0,
    cpuUs: 20,
    peakRssMiB: 50,
    gbitUp: 10,
    gbitDown: 10,
    kibPerSession: 4,
    ...o,
  });
  const peers = (blitz: Partial<Summary>) => ({
    'blitz-lb': s(blitz),
    'blitz-lb (pool off)': s(blitz),
    'node-tcp-proxy': s({}),
    haproxy: s({}),
  });
  const r: Results = {
    date: '2026-11-28T00:00:00Z',
    quick: false,
    rounds: 1,
    opts: { seconds: 1, bulkBytes: 1, idleSessions: 1 },
    machine: {},
    scenarios: {
      'keep-alive': peers({ cpuUs: 10, rps: 1500, p99: 4 }),
      churn: peers({ cpuUs: 40 }),
      bulk: peers({}),
      idle: peers({ kibPerSession: 3 }),
    },
  };
  const goals = markdown(r).split('### goals')[1] ?? '';
  for (const g of GOALS) assert.ok(goals.includes(g.row), g.row);
  assert.match(goals, /keep-alive: CPU per request vs HAProxy \| ≤ 1.3x \| 0.50x \| met/);
  assert.match(goals, /churn: CPU per connection vs HAProxy \| ≤ 1.8x \| 2.00x \| missed/);
  assert.match(goals, /keep-alive: req\/s vs node-tcp-proxy \| ≥ 1.2x \| 1.50x \| met/);
  assert.match(goals, /idle: memory per session vs HAProxy \| ≤ 2x \| 0.75x \| met/);
});
