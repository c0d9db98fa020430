import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { startBalancer, upgradeConfig } from './helpers/lifecycle.js';
import { notifySocket } from './helpers/notify-socket.js';
import { echoServer, waitFor } from './helpers/servers.js';

const usecNow = (): bigint => process.hrtime.bigint() / 1000n;
/** Run as root, systemd-notify sends with the balancer's PID; otherwise with its own. */
const asRoot = process.getuid?.() === 0;

test('systemd: READY=1 once serving, RELOADING=1 (MONOTONIC_USEC) then READY=1 around each reload, good or bad, STOPPING=1 at SIGTERM', async (t) => {
  const sock = await notifySocket(t);
  const be = await echoServer(t);
  const lb = await startBalancer(t, upgradeConfig(be), { NOTIFY_SOCKET: sock.path });
  const ready = await sock.next('READY');
  assert.equal(ready.fields.STATUS, 'serving');
  if (asRoot) assert.equal(ready.pid, lb.proc.pid, 'sent as the balancer');

  const before = usecNow();
  lb.proc.kill('SIGHUP');
  const reloading = await sock.next('RELOADING');
  const after = usecNow();
  const at = BigInt(reloading.fields.MONOTONIC_USEC ?? '0');
  assert.ok(at >= before && at <= after, `MONOTONIC_USEC ${at} is CLOCK_MONOTONIC now`);
  await sock.next('READY', 1);

  // A reload that fails leaves the old config serving: systemd hears READY=1 again.
  writeFileSync(lb.file, '[services.web]\nlisten = 5\n');
  lb.proc.kill('SIGHUP');
  await sock.next('RELOADING', 1);
  await sock.next('READY', 2);
  await waitFor(
    () => lb.logs().some((l) => l.msg === 'reload failed; the old config keeps running'),
    10_000,
    'the failed reload',
  );

  lb.proc.kill('SIGTERM');
  const stopping = await sock.next('STOPPING');
  assert.equal(stopping.fields.STATUS, 'draining');
  assert.equal(await lb.exited, 0);
  const order = sock.messages().map((m) => Object.keys(m.fields)[0]);
  assert.deepEqual(order, ['READY', 'RELOADING', 'READY', 'RELOADING', 'READY', 'STOPPING']);
});

test('systemd: after an upgrade the old process names the new one MAINPID, and its own exit sends no STOPPING=1', async (t) => {
  const sock = await notifySocket(t);
  const be = await echoServer(t);
  const lb = await startBalancer(t, upgradeConfig(be), { NOTIFY_SOCKET: sock.path });
  await sock.next('READY');
  lb.proc.kill('SIGUSR2');
  const main = await sock.next('MAINPID');
  const serves = lb
    .logs()
    .find((l) => l.msg === 'upgrade: the new process serves; this one stops accepting and drains');
  const newPid = serves?.newPid as number;
  assert.equal(Number(main.fields.MAINPID), newPid);
  assert.notEqual(newPid, lb.proc.pid);
  assert.equal(main.fields.READY, '1');
  if (asRoot) assert.equal(main.pid, lb.proc.pid, 'sent by the old main process');
  assert.equal(await lb.exited, 0);
  assert.equal(
    sock.messages().filter((m) => 'STOPPING' in m.fields).length,
    0,
    'the old process stopping is not the service stopping',
  );
  // The new process is the service now: its stop is.
  process.kill(newPid, 'SIGTERM');
  const stopping = await sock.next('STOPPING');
  if (asRoot) assert.equal(stopping.pid, newPid);
});

test('systemd: NOTIFY_SOCKET set but no systemd-notify on PATH: one warning that says what will happen, and the balancer serves', async (t) => {
  const sock = await notifySocket(t);
  const be = await echoServer(t);
  const lb = await startBalancer(t, upgradeConfig(be), {
    NOTIFY_SOCKET: sock.path,
    PATH: '/nonexistent',
  });
  const warned = () => lb.logs().filter((l) => l.component === 'systemd' && l.level === 40);
  await waitFor(() => warned().length === 1, 10_000, 'the warning');
  assert.match(
    String(warned()[0]?.msg),
    /is systemd-notify installed\?.*Type=notify unit will time out/,
  );
  lb.proc.kill('SIGHUP');
  await waitFor(
    () => lb.logs().some((l) => l.msg === 'SIGHUP: reloading config'),
    10_000,
    'the reload',
  );
  lb.proc.kill('SIGTERM');
  assert.equal(await lb.exited, 0);
  assert.equal(warned().length, 1, 'said once');
  assert.deepEqual(sock.messages(), []);
});
