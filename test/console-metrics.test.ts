import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { ReloadLog } from '../src/admin/reload-log.js';
import { startAdmin, value } from './helpers/admin.js';
import {
  addr,
  blackhole,
  echoServer,
  httpGet,
  httpServer,
  openClient,
  readBytes,
  refusedPort,
  startLb,
  svc,
  waitFor,
} from './helpers/servers.js';

const be = (service: string, backend: string) => `service="${service}",backend="${backend}"`;

test('metrics: backend state as a label set beside backend_up, weights configured and effective, limits', async (t) => {
  const a = await httpServer(t, 'a');
  const dead = await refusedPort();
  const lb = await startLb(
    t,
    svc(
      [
        { address: addr(a), weight: 3, max_connections: 5, max_rate: 100 },
        addr(dead),
        addr(await httpServer(t, 'c')),
      ],
      { health: { kind: 'tcp', interval: '1h', timeout: '500ms' }, max_connections: 77 },
    ),
  );
  const { metrics } = await startAdmin(t, lb);
  await lb.performHealthCheck();
  lb.drainBackend('web', addr(a));
  let m = await metrics();
  const states = (b: string) =>
    Object.fromEntries(
      ['up', 'down', 'half-open', 'draining', 'disabled'].map((s) => [
        s,
        value(m, `blitz_lb_backend_state{${be('web', b)},state="${s}"}`),
      ]),
    );
  assert.deepEqual(states(addr(a)), { up: 0, down: 0, 'half-open': 0, draining: 1, disabled: 0 });
  assert.deepEqual(states(addr(dead)), {
    up: 0,
    down: 1,
    'half-open': 0,
    draining: 0,
    disabled: 0,
  });
  assert.equal(value(m, `blitz_lb_backend_up{${be('web', addr(dead))}}`), 0);
  assert.equal(value(m, `blitz_lb_backend_weight{${be('web', addr(a))},kind="configured"}`), 3);
  assert.equal(value(m, `blitz_lb_backend_max_connections{${be('web', addr(a))}}`), 5);
  assert.equal(value(m, `blitz_lb_backend_max_rate{${be('web', addr(a))}}`), 100);
  assert.equal(value(m, 'blitz_lb_max_connections{service="web"}'), 77);

  lb.enableBackend('web', addr(a));
  lb.setWeight('web', addr(a), 7);
  m = await metrics();
  assert.equal(states(addr(a)).up, 1);
  assert.equal(value(m, `blitz_lb_backend_weight{${be('web', addr(a))},kind="configured"}`), 3);
  assert.equal(value(m, `blitz_lb_backend_weight{${be('web', addr(a))},kind="effective"}`), 7);
  // Added at run time: configured is the weight it was added with, whatever it is set to later.
  const extra = await refusedPort();
  lb.addBackend('web', addr(extra), { weight: 2 });
  lb.setWeight('web', addr(extra), 5);
  m = await metrics();
  assert.equal(value(m, `blitz_lb_backend_weight{${be('web', addr(extra))},kind="configured"}`), 2);
  assert.equal(value(m, `blitz_lb_backend_weight{${be('web', addr(extra))},kind="effective"}`), 5);
});

test('metrics: weight 0 is a soft stop: no new sessions go to the backend, and it shows as effective 0', async (t) => {
  const a = await httpServer(t, 'a');
  const b = await httpServer(t, 'b');
  const lb = await startLb(t, svc([addr(a), addr(b)]));
  const { metrics } = await startAdmin(t, lb);
  lb.setWeight('web', addr(a), 0);
  const got = new Set<string>();
  for (let i = 0; i < 6; i++) got.add(await httpGet(lb.address('web').port));
  assert.deepEqual([...got], ['b']);
  const m = await metrics();
  assert.equal(value(m, `blitz_lb_backend_weight{${be('web', addr(a))},kind="effective"}`), 0);
  assert.equal(value(m, `blitz_lb_backend_state{${be('web', addr(a))},state="up"}`), 1);
});

test('metrics: health checks: duration histogram, failures by cause, last state change, cumulative down time', async (t) => {
  const dead = await refusedPort();
  const up = await echoServer(t);
  const lb = await startLb(
    t,
    svc([addr(dead), addr(up)], { health: { kind: 'tcp', interval: '1h', timeout: '500ms' } }),
  );
  const { metrics } = await startAdmin(t, lb);
  const before = Math.floor(Date.now() / 1000);
  await lb.performHealthCheck();
  await lb.performHealthCheck();
  let m = await metrics();
  assert.equal(value(m, 'blitz_lb_health_check_seconds_count{service="web",kind="tcp"}'), 4);
  assert.equal(
    value(m, 'blitz_lb_health_check_seconds_bucket{service="web",kind="tcp",le="+Inf"}'),
    4,
  );
  assert.equal(
    value(m, `blitz_lb_health_check_failures_total{${be('web', addr(dead))},cause="refused"}`),
    2,
  );
  assert.equal(
    value(m, `blitz_lb_health_check_failures_total{${be('web', addr(dead))},cause="timeout"}`),
    0,
  );
  assert.equal(
    value(m, `blitz_lb_health_check_failures_total{${be('web', addr(up))},cause="refused"}`),
    0,
  );
  const changed = value(
    m,
    `blitz_lb_backend_last_state_change_timestamp_seconds{${be('web', addr(dead))}}`,
  ) as number;
  assert.ok(changed >= before && changed <= Date.now() / 1000, String(changed));
  const down1 = value(m, `blitz_lb_backend_down_seconds_total{${be('web', addr(dead))}}`) as number;
  assert.ok(down1 >= 0);
  // Down time grows while the outage lasts, and stays zero for a backend never down.
  await waitFor(async () => {
    m = await metrics();
    return (
      (value(m, `blitz_lb_backend_down_seconds_total{${be('web', addr(dead))}}`) as number) >=
      down1 + 0.05
    );
  });
  assert.equal(value(m, `blitz_lb_backend_down_seconds_total{${be('web', addr(up))}}`), 0);
});

test('metrics: dial failures by cause (refused, timeout), a bounded label set', async (t) => {
  const dead = await refusedPort();
  const hole = await blackhole(t);
  const ok = await httpServer(t, 'ok');
  const lb = await startLb(
    t,
    svc([addr(dead), addr(hole), addr(ok)], { connect_timeout: '150ms', max_retries: 3 }),
  );
  const { metrics } = await startAdmin(t, lb);
  // Round-robin over three: the first client meets the refused one, then the blackhole, then ok.
  assert.equal(await httpGet(lb.address('web').port), 'ok');
  const m = await metrics();
  const f = (b: number, cause: string) =>
    value(m, `blitz_lb_dial_failures_total{${be('web', addr(b))},cause="${cause}"}`);
  assert.equal(f(dead, 'refused'), 1);
  assert.equal(f(dead, 'timeout'), 0);
  assert.equal(f(hole, 'timeout'), 1);
  assert.equal(f(hole, 'refused'), 0);
  assert.equal(f(ok, 'refused'), 0);
  const causes = new Set(
    [...m.matchAll(/blitz_lb_dial_failures_total\{[^}]*cause="([^"]+)"/g)].map((x) => x[1]),
  );
  assert.deepEqual([...causes].sort(), ['local', 'other', 'refused', 'reset', 'timeout', 'tls']);
});

test('metrics: bytes of an open session count at each scrape, and are not counted again when it closes', async (t) => {
  const e = await echoServer(t);
  const lb = await startLb(t, svc([addr(e)]));
  const { metrics } = await startAdmin(t, lb);
  const series = (dir: string) => `blitz_lb_bytes_total{${be('web', addr(e))},direction="${dir}"}`;
  const c = await openClient(lb.address('web').port);
  c.write(Buffer.alloc(1000, 1));
  await readBytes(c, 1000);
  let m = await metrics();
  assert.equal(value(m, series('to-backend')), 1000);
  assert.equal(value(m, series('from-backend')), 1000);
  c.write(Buffer.alloc(500, 2));
  await readBytes(c, 500);
  m = await metrics();
  assert.equal(value(m, series('to-backend')), 1500);
  c.end();
  await once(c, 'close');
  // At the session's end its bytes move from the open count to the closed one, never both.
  await waitFor(() => lb.service('web').activeSessions === 0);
  m = await metrics();
  assert.equal(value(m, series('to-backend')), 1500, 'once, not again at close');
  assert.equal(value(m, series('from-backend')), 1500);
});

test('metrics: queue length and the longest wait now; no server-computed rate', async (t) => {
  const e = await echoServer(t);
  const lb = await startLb(
    t,
    svc([{ address: addr(e), max_connections: 1 }], { queue_size: 5, queue_timeout: '10s' }),
  );
  const { metrics } = await startAdmin(t, lb);
  const port = lb.address('web').port;
  const first = await openClient(port);
  first.write('x');
  await readBytes(first, 1);
  const waiting: Socket[] = [await openClient(port), await openClient(port)];
  t.after(() => {
    for (const s of [first, ...waiting]) s.destroy();
  });
  await waitFor(() => lb.service('web').queueNow().length === 2);
  let m = '';
  await waitFor(async () => {
    m = await metrics();
    return (value(m, 'blitz_lb_queue_longest_wait_seconds{service="web"}') as number) >= 0.05;
  });
  assert.equal(value(m, 'blitz_lb_queue_length{service="web"}'), 2);
  assert.equal(value(m, 'blitz_lb_queue_size{service="web"}'), 5);
  for (const s of [first, ...waiting]) s.destroy();
  await waitFor(() => lb.service('web').activeSessions === 0);
  m = await metrics();
  assert.equal(value(m, 'blitz_lb_queue_length{service="web"}'), 0);
  assert.equal(value(m, 'blitz_lb_queue_longest_wait_seconds{service="web"}'), 0);
  // A rate is Prometheus's to compute, from the counter (rate(blitz_lb_accepted_total[1m])).
  assert.equal(value(m, 'blitz_lb_accepted_total{service="web"}'), 3);
  assert.doesNotMatch(m, /^blitz_lb_session_rate/m);
});

test('metrics: build_info, the last reload and its time, process start time', async (t) => {
  const a = await httpServer(t, 'a');
  const lb = await startLb(t, svc([addr(a)]));
  const reloads = new ReloadLog();
  let fail = true;
  const reload = reloads.track(async () => {
    if (fail) throw new Error('config.toml:3:1: bad');
    return { added: [], removed: [], changed: [] };
  });
  const { metrics, call } = await startAdmin(t, lb, { reload, reloads });
  let m = await metrics();
  assert.match(m, /\nblitz_lb_build_info\{version="\d+\.\d+\.\d+[^"]*",node="v\d+[^"]*"\} 1\n/);
  assert.equal(value(m, 'blitz_lb_config_last_reload_successful'), 1);
  const startTs = value(m, 'blitz_lb_config_last_reload_success_timestamp_seconds') as number;
  assert.ok(Math.abs(startTs - Date.now() / 1000) < 60);
  assert.ok((value(m, 'process_start_time_seconds') as number) > 1.6e9);
  assert.equal((await call('POST', '/api/reload')).status, 400);
  m = await metrics();
  assert.equal(value(m, 'blitz_lb_config_last_reload_successful'), 0);
  assert.equal(value(m, 'blitz_lb_config_last_reload_success_timestamp_seconds'), startTs);
  fail = false;
  assert.equal((await call('POST', '/api/reload')).status, 200);
  m = await metrics();
  assert.equal(value(m, 'blitz_lb_config_last_reload_successful'), 1);
  assert.ok(
    (value(m, 'blitz_lb_config_last_reload_success_timestamp_seconds') as number) >= startTs,
  );
});
