import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Backend, isAvailable } from '../src/backend/backend.js';
import { RoundRobin } from '../src/balancer/round-robin.js';
import { workerShare } from '../src/cluster/share.js';
import { type BackendConfig, NO_SHARE, parseConfig } from '../src/config/schema.js';
import { SourceLimiter } from '../src/proxy/source-limits.js';
import { backendConfig, setOf } from './helpers/backends.js';

test('a worker follows the primary: dial outcomes are reported, never decided locally', () => {
  const sent: string[] = [];
  const set = setOf([backendConfig(9001), backendConfig(9002)], {
    dialFailed: (b, cause) => sent.push(`fail ${b.port} ${cause}`),
    dialSucceeded: (b) => sent.push(`ok ${b.port}`),
  });
  const [a] = set.all as [Backend, Backend];
  set.recordDialFailure(a, { kind: 'refused', detail: 'ECONNREFUSED' });
  set.recordDialFailure(a, { kind: 'refused', detail: 'ECONNREFUSED' });
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
  set.recordDialFailure(a, { kind: 'refused', detail: 'ECONNREFUSED' });
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

test('the shares of a limit over N workers add up to the limit, never more, N > limit included', () => {
  const cases: [limit: number, n: number][] = [
    [100, 3],
    [1, 4],
    [2, 3],
    [5, 8],
    [10, 10],
    [7, 2],
    [10_000, 7],
  ];
  for (const [limit, n] of cases) {
    const c = parseConfig({
      process: { workers: n },
      services: {
        web: {
          listen: '127.0.0.1:8080',
          max_connections: limit,
          queue_size: limit,
          max_connections_per_source: limit,
          max_rate_per_source: limit,
          backends: [
            { address: '127.0.0.1:9001', max_connections: limit, max_rate: limit },
            '127.0.0.1:9002',
          ],
        },
      },
    });
    const at = `limit ${limit} over ${n} workers`;
    const shares = Array.from({ length: n }, (_, i) => workerShare(c, n, i + 1).services[0]);
    // What each worker admits under its share, counted through the checks that enforce it.
    const admitted = { service: 0, queue: 0, backend: 0, backendRate: 0, source: 0, sourceRate: 0 };
    for (const s of shares) {
      assert.ok(s, at);
      for (const v of [
        s.maxConnections,
        s.queueSize,
        s.maxConnectionsPerSource,
        s.maxRatePerSource,
      ])
        assert.ok(v >= 1 || v === NO_SHARE, `${at}: share ${v} (0 would mean no limit)`);
      // The listener refuses at open >= max_connections, the queue at waiting >= queue_size.
      for (let open = 0; open < s.maxConnections; open++) admitted.service++;
      for (let waiting = 0; waiting < s.queueSize; waiting++) admitted.queue++;
      const [limited, free] = s.backends as [BackendConfig, BackendConfig];
      assert.deepEqual([free.maxConnections, free.maxRate], [0, 0], `${at}: no limit stays 0`);
      const capped = new Backend({ ...limited, maxRate: 0 });
      while (isAvailable(capped, 0)) {
        capped.active++;
        admitted.backend++;
      }
      const rated = new Backend({ ...limited, maxConnections: 0 });
      while (isAvailable(rated, 0)) {
        rated.rateTokens--;
        admitted.backendRate++;
      }
      const perSource = new SourceLimiter(s.maxConnectionsPerSource, 0);
      while (perSource.acquire('10.0.0.1', 0) === 'ok') admitted.source++;
      const perSourceRate = new SourceLimiter(0, s.maxRatePerSource);
      while (perSourceRate.acquire('10.0.0.1', 0) === 'ok') admitted.sourceRate++;
      assert.ok(perSource.size <= 1 && perSourceRate.size <= 1);
    }
    for (const [what, sum] of Object.entries(admitted)) assert.equal(sum, limit, `${at}: ${what}`);
    const none = shares.filter((s) => s?.maxConnections === NO_SHARE).length;
    assert.equal(none, Math.max(0, n - limit), `${at}: workers that take none`);
  }
  const one = parseConfig({
    services: { web: { listen: '127.0.0.1:8080', backends: ['127.0.0.1:9001'] } },
  });
  assert.equal(workerShare(one, 1, 1), one);
});

test('a worker with no share of a limit takes nothing under it, and keeps no per-source record', () => {
  const b = new Backend({ ...backendConfig(9001), maxConnections: NO_SHARE });
  assert.equal(isAvailable(b, 0), false, 'backend max_connections');
  const r = new Backend({ ...backendConfig(9001), maxRate: NO_SHARE });
  assert.equal(isAvailable(r, 1e9), false, 'backend max_rate, however long it waited');
  const conns = new SourceLimiter(NO_SHARE, 0);
  assert.equal(conns.enabled, true);
  assert.equal(conns.acquire('10.0.0.1', 0), 'connections');
  const rate = new SourceLimiter(0, NO_SHARE);
  assert.equal(rate.acquire('10.0.0.1', 1e9), 'rate');
  assert.equal(conns.size + rate.size, 0);
});
