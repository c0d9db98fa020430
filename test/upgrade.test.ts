import assert from 'node:assert/strict';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { tempConfig } from './helpers/cli.js';
import {
  type Balancer,
  churn,
  longConnection,
  startBalancer,
  upgradeConfig,
} from './helpers/lifecycle.js';
import { echoServer, openClient, refusedPort, waitFor } from './helpers/servers.js';

const SERVES = 'upgrade: the new process serves; this one stops accepting and drains';
const FAILED = 'upgrade failed; this process keeps serving';

function logged(lb: Balancer, msg: string): Record<string, unknown> | undefined {
  return lb.logs().find((l) => l.msg === msg);
}

test('SIGUSR2 under load: the new process takes the sockets with no failed connection, the old one exits after its last session, pid_file follows', async (t) => {
  const be = await echoServer(t);
  const lb = await startBalancer(t, upgradeConfig(be, 'pid_file = "lb.pid"'));
  const pidFile = join(dirname(lb.file), 'lb.pid');
  assert.equal(readFileSync(pidFile, 'utf8').trim(), String(lb.proc.pid));
  const longs = await Promise.all([1, 2, 3].map(() => longConnection(lb.port)));
  for (const l of longs) assert.equal(await l.ping('before'), 'before');
  const load = churn(t, lb.port, 4);
  await waitFor(() => load.ok >= 50, 20_000, 'load before the upgrade');

  lb.proc.kill('SIGUSR2');
  await waitFor(() => logged(lb, SERVES) !== undefined, 30_000, 'the new process to serve');
  const newPid = logged(lb, SERVES)?.newPid as number;
  assert.notEqual(newPid, lb.proc.pid);
  assert.equal(
    readFileSync(pidFile, 'utf8').trim(),
    String(newPid),
    'the new process wrote its PID',
  );
  const atHandOver = load.ok;
  await waitFor(() => load.ok >= atHandOver + 100, 20_000, 'load served by the new process');

  // The old process stopped accepting but still carries its open sessions.
  assert.equal(lb.proc.exitCode, null, 'the old process waits for its sessions');
  for (const l of longs) assert.equal(await l.ping('after'), 'after');
  for (const l of longs) l.socket.end();
  assert.equal(await lb.exited, 0);
  const atExit = load.ok;
  await waitFor(() => load.ok >= atExit + 50, 20_000, 'load after the old process exited');
  await load.stop();
  assert.deepEqual(load.failed, [], 'no connection failed');
  assert.equal(
    readFileSync(pidFile, 'utf8').trim(),
    String(newPid),
    'the old process left the PID file to the new one',
  );
  const live = await fetch(`http://127.0.0.1:${lb.adminPort}/livez`).then((r) => r.json());
  assert.equal((live as { pid: number }).pid, newPid, 'the admin socket went over too');
});

test('POST /api/upgrade with workers: no failed connection, the old primary and its workers exit', async (t) => {
  const be = await echoServer(t);
  const lb = await startBalancer(t, upgradeConfig(be, 'workers = 2'));
  const load = churn(t, lb.port, 4);
  await waitFor(() => load.ok >= 50, 20_000, 'load before the upgrade');
  const r = await lb.admin('/api/upgrade', 'POST');
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.upgraded, true);
  const newPid = r.body.pid as number;
  assert.equal(await lb.exited, 0);
  const atExit = load.ok;
  await waitFor(() => load.ok >= atExit + 100, 20_000, 'load served by the new process');
  await load.stop();
  assert.deepEqual(load.failed, [], 'no connection failed');
  const live = await fetch(`http://127.0.0.1:${lb.adminPort}/livez`).then((x) => x.json());
  assert.equal((live as { pid: number }).pid, newPid);
});

test('a new binary that exits at once: the upgrade fails, says why (API and log), and the old process keeps serving', async (t) => {
  const be = await echoServer(t);
  const lb = await startBalancer(t, upgradeConfig(be), { BLITZ_LB_UPGRADE_COMMAND: '/bin/false' });
  const load = churn(t, lb.port, 2);
  await waitFor(() => load.ok >= 20, 20_000, 'load before the upgrade');
  const r = await lb.admin('/api/upgrade', 'POST');
  assert.equal(r.status, 500);
  assert.match(
    String(r.body.error),
    /upgrade failed, this process keeps serving: the new process exited \(code 1\) before it served/,
  );
  await waitFor(() => logged(lb, FAILED) !== undefined, 5000, 'the failure to be logged');
  assert.match(String(logged(lb, FAILED)?.reason), /exited \(code 1\)/);
  const after = load.ok;
  await waitFor(() => load.ok >= after + 20, 20_000, 'load after the failed upgrade');
  await load.stop();
  assert.deepEqual(load.failed, []);
  assert.equal(lb.proc.exitCode, null);
  assert.equal((await lb.admin('/readyz')).status, 200);
});

test('a new config that is invalid: the upgrade fails with the config error, the old process keeps serving, and a later upgrade works', async (t) => {
  const be = await echoServer(t);
  const lb = await startBalancer(t, upgradeConfig(be));
  const good = readFileSync(lb.file, 'utf8');
  writeFileSync(lb.file, good.replace('kind = "none"', 'kind = "carrier-pigeon"'));
  const r = await lb.admin('/api/upgrade', 'POST');
  assert.equal(r.status, 500);
  assert.match(
    String(r.body.error),
    /exited \(code 2\) before it served: .*services\.web\.health\.kind/s,
  );
  const load = churn(t, lb.port, 2);
  await waitFor(() => load.ok >= 20, 20_000, 'load after the failed upgrade');
  await load.stop();
  assert.deepEqual(load.failed, []);
  writeFileSync(lb.file, good);
  const again = await lb.admin('/api/upgrade', 'POST');
  assert.equal(again.status, 200, JSON.stringify(again.body));
  assert.equal(await lb.exited, 0);
});

test('a new process that never says it serves: stopped at upgrade_timeout, the old one keeps serving', async (t) => {
  const be = await echoServer(t);
  const lb0 = await startBalancer(t, upgradeConfig(be, 'upgrade_timeout = "300ms"'), {
    BLITZ_LB_UPGRADE_COMMAND: hangingScript(t),
  });
  const r = await lb0.admin('/api/upgrade', 'POST');
  assert.equal(r.status, 500);
  assert.match(String(r.body.error), /did not say it serves within 300 ms/);
  const load = churn(t, lb0.port, 1);
  await waitFor(() => load.ok >= 10, 20_000, 'load after the failed upgrade');
  await load.stop();
  assert.deepEqual(load.failed, []);
  // One at a time: after a failure another may start (409 only while one runs).
  const busy = await Promise.all([
    lb0.admin('/api/upgrade', 'POST'),
    lb0.admin('/api/upgrade', 'POST'),
  ]);
  assert.deepEqual(busy.map((b) => b.status).sort(), [409, 500]);
});

/** A program that runs until killed and never speaks. */
function hangingScript(t: TestContext): string {
  const file = tempConfig(t, '#!/bin/sh\nexec sleep 60\n', 'hang.sh');
  chmodSync(file, 0o755);
  return file;
}

test('an upgrade whose new config drops a service: its socket is closed, so clients there are refused, not left waiting', async (t) => {
  const be = await echoServer(t);
  const other = await refusedPort();
  const extra = `\n[services.api]\nlisten = "127.0.0.1:${other}"\nbackends = ["127.0.0.1:${be}"]\n[services.api.health]\nkind = "none"\n`;
  const lb = await startBalancer(t, (port, admin) => upgradeConfig(be)(port, admin) + extra);
  const c = await openClient(other);
  c.destroy();
  writeFileSync(lb.file, readFileSync(lb.file, 'utf8').replace(extra, ''));
  const r = await lb.admin('/api/upgrade', 'POST');
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(await lb.exited, 0);
  await assert.rejects(openClient(other), /ECONNREFUSED/);
  const load = churn(t, lb.port, 1);
  await waitFor(() => load.ok >= 10, 20_000, 'the kept service to serve');
  await load.stop();
  assert.deepEqual(load.failed, []);
});

test('with workers sharing sockets under the round-robin accept policy the primary cannot hand them over: the upgrade fails and says why', async (t) => {
  const be = await echoServer(t);
  // SO_REUSEPORT off: the workers share each socket through node:cluster, whose RR primary
  // accepts and passes connections, so no worker holds a socket to send.
  const lb = await startBalancer(t, upgradeConfig(be, 'workers = 2'), {
    NODE_CLUSTER_SCHED_POLICY: 'rr',
    BLITZ_LB_REUSE_PORT: '0',
  });
  const r = await lb.admin('/api/upgrade', 'POST');
  assert.equal(r.status, 500);
  assert.match(String(r.body.error), /NODE_CLUSTER_SCHED_POLICY/);
  const load = churn(t, lb.port, 1);
  await waitFor(() => load.ok >= 10, 20_000, 'load after the failed upgrade');
  await load.stop();
  assert.deepEqual(load.failed, []);
});
