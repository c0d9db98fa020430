import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { test } from 'node:test';
import { spawnCli, tempConfig } from './helpers/cli.js';
import {
  httpGet,
  listen,
  openClient,
  readAll,
  refusedPort,
  scriptedServer,
  waitFor,
} from './helpers/servers.js';

function config(listenPort: number, backends: number[], extra = ''): string {
  return `[process]\nshutdown_timeout = "10s"\n[log]\nlevel = "info"\n[services.web]\nlisten = "127.0.0.1:${listenPort}"\nbackends = [${backends
    .map((p) => `"127.0.0.1:${p}"`)
    .join(
      ', ',
    )}]\n[services.web.health]\nkind = "none"\n[services.web.pool]\nmin_idle = 0\n${extra}`;
}

test('SIGTERM while a session is open: the session completes, then exit 0', async (t) => {
  let backendSock: Socket | undefined;
  const be = await scriptedServer(t, (s) => {
    backendSock = s;
    s.resume();
  });
  const port = await refusedPort();
  const child = spawnCli(t, ['run', '--config', tempConfig(t, config(port, [be]))]);
  await waitFor(() => child.stdout().includes('blitz-lb started'), 10_000, 'start');
  const c = await openClient(port);
  c.write('request');
  await waitFor(() => backendSock !== undefined, 5000, 'backend accept');
  child.proc.kill('SIGTERM');
  await waitFor(() => child.stdout().includes('stopping'), 5000, 'stop to begin');
  // New clients are refused while the old session drains.
  await assert.rejects(openClient(port), /ECONNREFUSED/);
  assert.equal(child.proc.exitCode, null, 'still running while a session is open');
  const reading = readAll(c);
  (backendSock as Socket).end('response after SIGTERM');
  assert.equal((await reading).toString(), 'response after SIGTERM');
  c.end();
  assert.equal(await child.exited, 0);
  assert.match(child.stdout(), /"msg":"stopped"/);
});

test('SIGTERM with a session that outlives shutdown_timeout: it is cut with a reset, exit 0', async (t) => {
  let got = '';
  const be = await scriptedServer(t, (s) =>
    s.on('data', (d: Buffer) => {
      got += d.toString();
    }),
  );
  const port = await refusedPort();
  const text = config(port, [be]).replace('shutdown_timeout = "10s"', 'shutdown_timeout = "300ms"');
  const child = spawnCli(t, ['run', '--config', tempConfig(t, text)]);
  await waitFor(() => child.stdout().includes('blitz-lb started'), 10_000, 'start');
  const c = await openClient(port);
  c.write('hang');
  c.resume();
  await waitFor(() => got === 'hang', 5000, 'the session to reach the backend');
  const start = Date.now();
  const cut = once(c, 'error');
  child.proc.kill('SIGTERM');
  // A cut, not a clean end: a reset, so the client never takes a truncated reply for a whole one.
  const [err] = (await cut) as [NodeJS.ErrnoException];
  assert.equal(err.code, 'ECONNRESET');
  assert.ok(Date.now() - start >= 250, 'cut at the deadline, not before');
  assert.equal(await child.exited, 0);
  c.destroy();
});

test('a port already in use: one clear line, exit 1', async (t) => {
  const taken = await listen(t, createServer());
  const child = spawnCli(t, ['run', '--config', tempConfig(t, config(taken, [9]))]);
  assert.equal(await child.exited, 1);
  assert.equal(child.stderr(), `blitz-lb: listen 127.0.0.1:${taken}: address already in use\n`);
});

test('demo: three backends answer in turn, each naming itself', async (t) => {
  const ports = [
    await refusedPort(),
    await refusedPort(),
    await refusedPort(),
    await refusedPort(),
  ];
  const [lbPort, ...be] = ports as [number, number, number, number];
  const child = spawnCli(t, ['demo', '--config', tempConfig(t, config(lbPort, be))]);
  await waitFor(
    () => child.stdout().includes('blitz-lb started'),
    10_000,
    `demo start: ${child.stderr()}`,
  );
  const names = new Set<string>();
  for (let i = 0; i < 3; i++)
    names.add(/hello from (backend-\d)/.exec(await httpGet(lbPort))?.[1] ?? '?');
  assert.deepEqual([...names].sort(), ['backend-1', 'backend-2', 'backend-3']);
  child.proc.kill('SIGINT');
  assert.equal(await child.exited, 0);
});

test('SIGHUP with a FIFO at the config path: the reload fails with one clear line, the process keeps running', async (t) => {
  const port = await refusedPort();
  const file = tempConfig(t, config(port, [9]));
  const child = spawnCli(t, ['run', '--config', file]);
  await waitFor(() => child.stdout().includes('blitz-lb started'), 10_000, 'start');
  rmSync(file);
  const mk = spawnSync('mkfifo', [file]);
  assert.equal(mk.status, 0, `mkfifo: ${mk.stderr}`);
  child.proc.kill('SIGHUP');
  await waitFor(
    () => child.stdout().includes('reload failed'),
    5000,
    'the reload to fail rather than wait for a writer on the FIFO',
  );
  assert.match(
    child.stdout(),
    /is a FIFO \(named pipe\), not a regular file.*the old config keeps running/,
  );
  const c = await openClient(port);
  c.destroy();
  child.proc.kill('SIGTERM');
  assert.equal(await child.exited, 0);
});
