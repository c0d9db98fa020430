import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GOALS } from '../bench/goals.js';
import { markdown, type Results, type Summary, validate } from '../bench/lib/report.js';
import { slope } from '../bench/lib/scenarios.js';

test('bench: idle memory per session is the slope, so a fixed cost (the pool) is not in it', () => {
  // 40 MiB held regardless of sessions, 5 KiB a session: a two-point ratio from 0 would say more.
  const pts: [number, number][] = [0, 1000, 2000, 3000, 4000].map((n) => [n, 40 * 1024 + 5 * n]);
  assert.equal(slope(pts), 5);
  assert.ok(Number.isNaN(slope([[10, 1]])), 'one point has no slope');
});

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

test('bench: every goal is printed with its ratio in the run and met or missed', () => {
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
  assert.match(goals, /keep-alive: CPU per request vs HAProxy \| ≤ 1.15x \| 0.50x \| met/);
  assert.match(goals, /churn: CPU per connection vs HAProxy \| ≤ 1.5x \| 2.00x \| missed/);
  assert.match(goals, /idle: memory per session vs HAProxy \| ≤ 2x \| 0.75x \| met/);
  assert.match(goals, /idle: memory per session vs node-tcp-proxy \| ≤ 0.8x \| 0.75x \| met/);
  // Not measured in this run: said so, never met.
  assert.match(goals, /warm TLS pool: connect p50 vs HAProxy \| ≤ 1x \| – \| – \(not measured\)/);
});

/** A --tls-only run: the TLS group alone, blitz-lb against HAProxy and nginx stream. */
function tlsRun(
  handshake: Partial<Summary>,
  keepAlive: Partial<Summary>,
  pool: Record<string, Partial<Summary>>,
): Results {
  return {
    date: '2026-11-28T00:00:00Z',
    quick: true,
    rounds: 1,
    opts: { seconds: 1, bulkBytes: 1, idleSessions: 1, ttfbConnections: 10 },
    machine: {},
    scenarios: {
      'tls-handshake': {
        'blitz-lb': s({ ...handshake, loadCpuPct: 150 }),
        haproxy: s({ rps: 2000, cpuUs: 400, loadCpuPct: 180 }),
        'nginx stream': s({ rps: 2100, cpuUs: 350, loadCpuPct: 185 }),
      },
      'tls-keep-alive': {
        'blitz-lb': s(keepAlive),
        haproxy: s({ cpuUs: 16 }),
        'nginx stream': s({ cpuUs: 15 }),
      },
      'tls-pool': Object.fromEntries(Object.entries(pool).map(([t, o]) => [t, s(o)])),
    },
  };
}

test('bench: the TLS group has its tables, ratios against HAProxy, and its four goals', () => {
  const r = tlsRun(
    { rps: 1500, cpuUs: 900 },
    { cpuUs: 28 },
    {
      'blitz-lb': { p50: 0.5, p99: 2, poolHitPct: 100 },
      'blitz-lb (pool off)': { p50: 2.5, p99: 6, poolHitPct: 0 },
      haproxy: { p50: 2, p99: 5 },
    },
  );
  const md = markdown(r);
  const section = (title: string): string => md.split(title)[1]?.split('###')[0] ?? '';
  const hs = section('### TLS termination: new connections');
  assert.match(hs, /\| blitz-lb \| 1500 \| 0\.75x \| .* \| 900\.0 \| 2\.25x \| .* \| 150 \|/);
  assert.match(hs, /\| haproxy \| 2000 \| 1\.00x \|/);
  const ka = section('### TLS termination: keep-alive');
  assert.match(ka, /\| blitz-lb \| 1000 \| 1\.00x \| .* \| 28\.0 \| 1\.75x \|/);
  const pool = section('### TLS to backends: connect latency');
  assert.match(pool, /\| blitz-lb \| 0\.50 \| 0\.25x \| 2\.00 \| 0\.40x \| 0 \| 100 \|/);
  assert.match(pool, /\| blitz-lb \(pool off\) \| 2\.50 \| 1\.25x \|/);
  assert.match(pool, /\| haproxy \| 2\.00 \| 1\.00x \| 5\.00 \| 1\.00x \| 0 \| – \|/);
  const goals = md.split('### goals')[1] ?? '';
  assert.match(
    goals,
    /TLS termination: CPU per handshake vs HAProxy \| ≤ 1\.2x \| 2\.25x \| missed/,
  );
  assert.match(goals, /TLS keep-alive: CPU per request vs HAProxy \| ≤ 1\.3x \| 1\.75x \| missed/);
  assert.match(goals, /warm TLS pool: connect p50 vs pool off \| ≤ 0\.7x \| 0\.20x \| met/);
  assert.match(goals, /warm TLS pool: connect p50 vs HAProxy \| ≤ 1x \| 0\.25x \| met/);
  const better = markdown(
    tlsRun(
      { rps: 1800, cpuUs: 440 },
      { cpuUs: 20 },
      {
        'blitz-lb': { p50: 2.2, p99: 3, poolHitPct: 100 },
        'blitz-lb (pool off)': { p50: 2.27, p99: 3, poolHitPct: 0 },
        haproxy: { p50: 1.56, p99: 3 },
      },
    ),
  ).split('### goals')[1];
  assert.match(better ?? '', /CPU per handshake vs HAProxy \| ≤ 1\.2x \| 1\.10x \| met/);
  assert.match(better ?? '', /CPU per request vs HAProxy \| ≤ 1\.3x \| 1\.25x \| met/);
  // The last full run's pool figures: a warm hit no faster than a dial misses both.
  assert.match(better ?? '', /connect p50 vs pool off \| ≤ 0\.7x \| 0\.97x \| missed/);
  assert.match(better ?? '', /connect p50 vs HAProxy \| ≤ 1x \| 1\.41x \| missed/);
  assert.ok(!md.includes('### keep-alive'), 'a TLS-only run prints no plain tables');
});

test('bench: a TLS-only run is valid with TLS figures alone, and a missing TLS figure is named', () => {
  const targets = {
    plain: [],
    tls: ['blitz-lb', 'haproxy', 'nginx stream'],
    pool: ['blitz-lb', 'haproxy'],
  };
  const ok = tlsRun({ rps: 1500, cpuUs: 900 }, { cpuUs: 28 }, { 'blitz-lb': {}, haproxy: {} });
  assert.deepEqual(validate(ok, targets), []);
  const broken = tlsRun(
    { rps: 0, cpuUs: 900 },
    { cpuUs: Number.NaN },
    {
      'blitz-lb': { errors: 3 },
      haproxy: { p50: Number.NaN },
    },
  );
  assert.deepEqual(validate(broken, targets), [
    'tls-handshake blitz-lb: no handshakes/s or CPU figure',
    'tls-keep-alive blitz-lb: no req/s or CPU figure',
    'tls-pool blitz-lb: 3 failed connections',
    'tls-pool haproxy: no latency or CPU figure',
  ]);
  // The plain scenarios are checked only for the targets that ran them.
  assert.deepEqual(
    validate(ok, { ...targets, plain: ['blitz-lb'] }).filter((p) => !p.startsWith('tls')),
    [
      'keep-alive blitz-lb: no req/s',
      'churn blitz-lb: no req/s',
      'bulk blitz-lb: no throughput',
      'idle blitz-lb: no memory figure',
      'keep-alive blitz-lb: no CPU figure',
    ],
  );
});
