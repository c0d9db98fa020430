import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { type TestContext, test } from 'node:test';
import { CLI, tempConfig } from './helpers/cli.js';
import { churn } from './helpers/lifecycle.js';
import { echoServer, refusedPort, waitFor } from './helpers/servers.js';

/**
 * A listening socket made here and passed to the balancer as fd 3, as
 * systemd does: through `sh`, which sets LISTEN_PID to its own PID and then
 * execs node (same PID). This process's copy is closed at once, so only the
 * balancer can answer on the port.
 */
async function activated(
  t: TestContext,
  toml: (admin: number) => string,
  env: Record<string, string>,
) {
  const sock = createServer();
  sock.listen(0, '127.0.0.1');
  await once(sock, 'listening');
  const port = (sock.address() as AddressInfo).port;
  const adminPort = await refusedPort();
  const file = tempConfig(t, toml(adminPort));
  const exports = Object.entries(env)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  const proc = spawn(
    '/bin/sh',
    [
      '-c',
      `export ${exports} LISTEN_PID=$$; exec "$@"`,
      'sh',
      process.execPath,
      CLI,
      'run',
      '--config',
      file,
    ],
    // The server's handle: child_process passes it as the child's fd 3.
    { stdio: ['ignore', 'pipe', 'pipe', (sock as unknown as { _handle: never })._handle] },
  );
  sock.close();
  let out = '';
  let err = '';
  proc.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  proc.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
  t.after(() => {
    if (proc.exitCode === null) proc.kill('SIGKILL');
    for (const m of out.matchAll(/"newPid":(\d+)/g))
      try {
        process.kill(Number(m[1]), 'SIGKILL');
      } catch {}
  });
  return { proc, port, adminPort, file, exited, out: () => out, err: () => err };
}

function config(backend: number, listen: string, extra = ''): (admin: number) => string {
  return (admin) =>
    `[process]\nshutdown_timeout = "5s"\n${extra}\n[admin]\nlisten = "127.0.0.1:${admin}"\n[services.web]\nlisten = "${listen}"\nbackends = ["127.0.0.1:${backend}"]\n[services.web.health]\nkind = "none"\n[services.web.pool]\nmin_idle = 0\n`;
}

test('listen = "systemd:web": serves on the socket systemd passed (LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID), and an upgrade hands it on', async (t) => {
  const be = await echoServer(t);
  const lb = await activated(t, config(be, 'systemd:web'), {
    LISTEN_FDS: '1',
    LISTEN_FDNAMES: 'web',
  });
  // Clients queue in the kernel until it accepts: the load starts before the balancer does.
  const load = churn(t, lb.port, 2);
  await waitFor(() => load.ok >= 20, 20_000, 'clients served on the passed socket');
  assert.match(lb.out(), /"blitz-lb started"/);
  const r = await fetch(`http://127.0.0.1:${lb.adminPort}/api/upgrade`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
  });
  assert.equal(r.status, 200, await r.clone().text());
  assert.equal(await lb.exited, 0);
  const at = load.ok;
  await waitFor(() => load.ok >= at + 20, 20_000, 'clients served by the new process');
  await load.stop();
  assert.deepEqual(load.failed, []);
});

test('listen = "fd:3" with workers: each worker accepts on the passed descriptor, and workers restarted after all died do too', async (t) => {
  const be = await echoServer(t);
  const lb = await activated(t, config(be, 'fd:3', 'workers = 2'), {});
  const ups = (): number[] =>
    [...lb.out().matchAll(/"workerPid":(\d+),"msg":"worker up"/g)].map((m) => Number(m[1]));
  await waitFor(() => ups().length === 2, 20_000, 'both workers');
  const load = churn(t, lb.port, 2);
  await waitFor(() => load.ok >= 20, 20_000, 'clients served on fd 3');
  assert.deepEqual(load.failed, []);
  // Both workers die at once: the sessions they carried die with them (one a loop at most),
  // but the primary still holds the socket, so new clients wait in its queue (none is
  // refused) and the restarted workers listen on it again.
  for (const pid of ups()) process.kill(pid, 'SIGKILL');
  await waitFor(() => ups().length === 4, 20_000, 'both workers restarted');
  const at = load.ok;
  await waitFor(() => load.ok >= at + 20, 20_000, 'clients served by the restarted workers');
  await load.stop();
  assert.ok(load.failed.length <= 2, `at most the two sessions in flight: ${load.failed}`);
  assert.deepEqual(
    load.failed.filter((f) => /ECONNREFUSED/.test(f)),
    [],
  );
});

test('listen = "systemd:NAME" that systemd did not pass: exit 1 naming what it passed', async (t) => {
  const be = await echoServer(t);
  const lb = await activated(t, config(be, 'systemd:api'), {
    LISTEN_FDS: '1',
    LISTEN_FDNAMES: 'web',
  });
  assert.equal(await lb.exited, 1);
  assert.match(
    lb.err(),
    /listen systemd:api: systemd passed no socket named "api" \(it passed: web\)/,
  );
});

test('with workers, a reload that moves a service onto a passed socket: running workers get it and serve there', async (t) => {
  const be = await echoServer(t);
  const first = await refusedPort();
  const lb = await activated(t, config(be, `127.0.0.1:${first}`, 'workers = 2'), {});
  await waitFor(() => lb.out().includes('"blitz-lb started"'), 20_000, 'the start');
  writeFileSync(lb.file, readFileSync(lb.file, 'utf8').replace(`127.0.0.1:${first}`, 'fd:3'));
  lb.proc.kill('SIGHUP');
  await waitFor(() => lb.out().includes('"config reloaded"'), 20_000, 'the reload');
  assert.doesNotMatch(lb.out(), /reload failed/);
  const load = churn(t, lb.port, 2);
  await waitFor(() => load.ok >= 20, 20_000, 'clients served on fd 3 after the reload');
  await load.stop();
  assert.deepEqual(load.failed, []);
});
