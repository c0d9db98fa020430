import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { churn, startBalancer, upgradeConfig } from './helpers/lifecycle.js';
import { echoServer, refusedPort, waitFor } from './helpers/servers.js';

test('/livez, /readyz and POST /api/drain, /api/undrain: drained, it says 503 and keeps accepting', async (t) => {
  const be = await echoServer(t);
  const lb = await startBalancer(t, upgradeConfig(be));
  const live = await lb.admin('/livez');
  assert.deepEqual(live, { status: 200, body: { ok: true, pid: lb.proc.pid } });
  assert.deepEqual(await lb.admin('/readyz'), { status: 200, body: { ready: true, failing: [] } });
  assert.equal((await lb.admin('/api/drain')).status, 405, 'a write needs POST');
  const drained = await lb.admin('/api/drain', 'POST');
  assert.deepEqual(drained, { status: 200, body: { draining: true, ready: false } });
  const r = await lb.admin('/readyz');
  assert.equal(r.status, 503);
  assert.match(String(r.body.reason), /draining/);
  const load = churn(t, lb.port, 1);
  await waitFor(() => load.ok >= 10, 10_000, 'clients served while drained');
  await load.stop();
  assert.deepEqual(load.failed, []);
  assert.equal((await lb.admin('/livez')).status, 200, 'drained is still alive');
  await lb.admin('/api/undrain', 'POST');
  assert.equal((await lb.admin('/readyz')).status, 200);
});

test('/readyz is 503 while a service has no healthy backend', async (t) => {
  const dead = await refusedPort();
  const lb = await startBalancer(t, (port, admin) =>
    upgradeConfig(dead)(port, admin).replace(
      'kind = "none"',
      'kind = "tcp"\ninterval = "100ms"\nfall = 1',
    ),
  );
  await waitFor(async () => (await lb.admin('/readyz')).status === 503, 10_000, 'readyz 503');
  assert.deepEqual((await lb.admin('/readyz')).body, { ready: false, failing: ['web'] });
});

test('SIGTERM with drain_delay: /readyz 503 while still accepting, then a second signal stops at once', async (t) => {
  const be = await echoServer(t);
  const lb = await startBalancer(t, upgradeConfig(be, 'drain_delay = "10m"'));
  lb.proc.kill('SIGTERM');
  await waitFor(async () => (await lb.admin('/readyz')).status === 503, 10_000, 'readyz 503');
  assert.match(String((await lb.admin('/readyz')).body.reason), /stopping/);
  const load = churn(t, lb.port, 1);
  await waitFor(() => load.ok >= 10, 10_000, 'clients served during drain_delay');
  await load.stop();
  assert.deepEqual(load.failed, []);
  assert.doesNotMatch(lb.stdout(), /no new sessions/);
  lb.proc.kill('SIGTERM');
  assert.equal(await lb.exited, 0);
  assert.match(lb.stdout(), /"msg":"stopping: no new sessions, draining"/);
});

test('a reload applies pid_file (the new file written, the old removed) and drain_delay', async (t) => {
  const be = await echoServer(t);
  const lb = await startBalancer(t, upgradeConfig(be, 'pid_file = "a.pid"'));
  const dir = dirname(lb.file);
  assert.equal(readFileSync(join(dir, 'a.pid'), 'utf8'), `${lb.proc.pid}\n`);
  const text = readFileSync(lb.file, 'utf8');
  writeFileSync(
    lb.file,
    text.replace('pid_file = "a.pid"', 'pid_file = "b.pid"\ndrain_delay = "10m"'),
  );
  lb.proc.kill('SIGHUP');
  await waitFor(() => lb.stdout().includes('"config reloaded"'), 10_000, 'the reload');
  assert.equal(readFileSync(join(dir, 'b.pid'), 'utf8'), `${lb.proc.pid}\n`);
  assert.equal(existsSync(join(dir, 'a.pid')), false);
  lb.proc.kill('SIGTERM');
  await waitFor(async () => (await lb.admin('/readyz')).status === 503, 10_000, 'readyz 503');
  assert.doesNotMatch(lb.stdout(), /no new sessions/, 'drain_delay holds the stop');
  lb.proc.kill('SIGTERM');
  assert.equal(await lb.exited, 0);
  assert.equal(existsSync(join(dir, 'b.pid')), false, 'removed at exit');
});
