import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Backend } from '../src/backend/backend.js';
import { RoundRobin } from '../src/balancer/round-robin.js';
import { workerShare } from '../src/cluster/share.js';
import { parseConfig } from '../src/config/schema.js';
import { backendConfig, setOf } from './helpers/backends.js';

test('a worker follows the primary: dial outcomes are reported, never decided locally', () => {
  const sent: string[] = [];
  const set = setOf([backendConfig(9001), backendConfig(9002)], {
    dialFailed: (b, cause) => sent.push(`fail ${b.port} ${cause}`),
    dialSucceeded: (b) => sent.push(`ok ${b.port}`),
  });
  const [a] = set.all as [Backend, Backend];
  set.recordDialFailure(a, 'ECONNREFUSED');
  set.recordDialFailure(a, 'ECONNREFUSED');
  assert.equal(a.healthy, true, 'fall = 1, but only the primary may take it down');
  assert.equal(a.dialFailuresTotal, 2, 'still counted for this worker’s metrics');
  set.reportDialSuccess(a);
  set.reportDialSuccess(a);
  assert.deepEqual(
    sent,
    ['fail 9001 ECONNREFUSED', 'fail 9001 ECONNREFUSED', 'ok 9001'],
    'a success is news only after failures',
  );
  // Down in the primary's verdict (no trial): nothing to report.
  set.applyState([
    { ...set.snapshot()[0], healthy: false } as ReturnType<typeof set.snapshot>[number],
  ]);
  set.recordDialFailure(a, 'ECONNREFUSED');
  assert.equal(sent.length, 3);
  assert.equal(a.dialFailuresTotal, 3);
});

test('applyState takes the primary’s verdicts, emits up/down for the pool, and names backends newly disabled', () => {
  const set = setOf([backendConfig(9001), backendConfig(9002), backendConfig(9003)]);
  const [a, b, c] = set.all as [Backend, Backend, Backend];
  const events: string[] = [];
  set.on('down', (x, why) => events.push(`down ${x.port} ${why}`));
  set.on('up', (x) => events.push(`up ${x.port}`));
  const st = (x: Backend, o: Partial<ReturnType<typeof set.snapshot>[number]> = {}) => ({
    address: x.address,
    healthy: true,
    halfOpen: false,
    draining: false,
    disabled: false,
    weight: 1,
    downReason: null,
    ...o,
  });
  const disabled = set.applyState([
    st(a, { healthy: false, downReason: 'probe: refused' }),
    st(b, { disabled: true, weight: 4 }),
    st(c, { draining: true }),
    { ...st(c), address: '127.0.0.1:1' },
  ]);
  assert.deepEqual(disabled, [b]);
  assert.deepEqual(events, ['down 9001 probe: refused']);
  assert.deepEqual(
    set.candidates,
    [a],
    'b disabled and c draining are out; a is down, so only all_down = "try-all" offers it',
  );
  assert.equal(b.weight, 4);
  set.applyState([st(a), st(b), st(c)]);
  assert.deepEqual(events, ['down 9001 probe: refused', 'up 9001']);
  assert.ok(a.upSince > 0, 'slow start counts from the primary’s up');
  assert.deepEqual(set.candidates, [a, b, c]);
  assert.deepEqual(set.applyState(set.snapshot()), [], 'a snapshot round-trips unchanged');
});

test('round-robin phase: workers that each take one connection start on different backends', () => {
  const set = setOf([backendConfig(9001), backendConfig(9002), backendConfig(9003)]);
  const firsts = [0, 1, 2, 3].map((phase) => {
    const rr = new RoundRobin(phase);
    rr.update(set.candidates);
    return rr.pick({ now: 0, tried: [], clientIp: '' })?.port;
  });
  assert.deepEqual(firsts, [9001, 9002, 9003, 9001]);
  // The phase only moves the start: six picks still give each backend two.
  const rr = new RoundRobin(2);
  rr.update(set.candidates);
  const counts = new Map<number, number>();
  for (let i = 0; i < 6; i++) {
    const p = rr.pick({ now: 0, tried: [], clientIp: '' })?.port as number;
    counts.set(p, (counts.get(p) ?? 0) + 1);
  }
  assert.deepEqual([...counts.values()], [2, 2, 2]);
});

test('each of N workers enforces ceil(limit / N), so together they never exceed a limit', () => {
  const c = parseConfig({
    process: { workers: 3 },
    services: {
      web: {
        listen: '127.0.0.1:8080',
        max_connections: 100,
        queue_size: 10,
        max_connections_per_source: 5,
        max_rate_per_source: 2,
        backends: [
          { address: '127.0.0.1:9001', max_connections: 10, max_rate: 30 },
          '127.0.0.1:9002',
        ],
      },
    },
  });
  const s = workerShare(c, 3).services[0];
  assert.ok(s);
  assert.deepEqual(
    [s.maxConnections, s.queueSize, s.maxConnectionsPerSource, s.maxRatePerSource],
    [34, 4, 2, 1],
  );
  assert.deepEqual(
    s.backends.map((b) => [b.maxConnections, b.maxRate]),
    [
      [4, 10],
      [0, 0],
    ],
    '0 (no limit) stays 0',
  );
  assert.equal(workerShare(c, 1), c);
});
