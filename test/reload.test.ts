import assert from 'node:assert/strict';
import { createHook } from 'node:async_hooks';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import autocannon from 'autocannon';
import { spawnCli, tempConfig } from './helpers/cli.js';
import { cfgOf } from './helpers/config.js';
import {
  addr,
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

test('reload: backends added, removed and re-weighted in place; health, pools and open sessions kept', async (t) => {
  const a = await echoServer(t);
  const b = await echoServer(t);
  const c = await echoServer(t);
  const base = svc([addr(a), addr(b)], {
    pool: { min_idle: 1 },
    health: { kind: 'tcp', interval: '1h' },
  });
  const lb = await startLb(t, base);
  const s = lb.service('web');
  await waitFor(
    () => s.pool.idleCount === 2 && s.backends.all.every((x) => x.lastCheck !== null),
    3000,
    'pool and first probes',
  );
  const bObj = s.backends.get(addr(b));
  const aCheck = s.backends.get(addr(a))?.lastCheck;
  const port = lb.address('web').port;
  // An open session on b, which the reload removes.
  let onB: Socket | undefined;
  for (let i = 0; i < 4 && !onB; i++) {
    const cl = await openClient(port);
    cl.write('x');
    await readBytes(cl, 1);
    if (s.backends.get(addr(b))?.active === 1) onB = cl;
    else cl.destroy();
  }
  assert.ok(onB, 'a session landed on b');
  const refillsBefore = s.pool.counters.refills;

  const web = (base.services as Record<string, Record<string, unknown>>).web as Record<
    string,
    unknown
  >;
  const next = cfgOf({
    ...base,
    services: { web: { ...web, backends: [{ address: addr(a), weight: 3 }, addr(c)] } },
  });
  const summary = await lb.reload(next);
  assert.deepEqual(summary, { added: [], removed: [], changed: ['web'] });
  assert.equal(s.backends.get(addr(a))?.weight, 3);
  assert.equal(
    s.backends.get(addr(a))?.lastCheck,
    aCheck,
    'health state of an unchanged backend is kept',
  );
  assert.equal(s.backends.get(addr(b)), undefined);
  assert.ok(bObj?.removed);
  assert.ok(s.backends.get(addr(c)));
  assert.equal(
    s.pool.counters.refills - refillsBefore <= 1,
    true,
    "a's warm socket was kept, only c's is new",
  );
  // The session on the removed backend still works.
  (onB as Socket).write('still');
  assert.equal((await readBytes(onB as Socket, 5)).toString(), 'still');
  (onB as Socket).destroy();
});

test('reload: new services start, removed ones stop accepting and drain, listen moves', async (t) => {
  const a = await httpServer(t, 'a');
  const lb = await startLb(t, svc([addr(a)]));
  const port = lb.address('web').port;
  const held = await openClient(port);
  held.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  await readBytes(held, 10);
  const newPort = await refusedPort();
  const api = (listen: number) => ({
    log: { level: 'silent' },
    services: {
      api: {
        listen: `127.0.0.1:${listen}`,
        backends: [addr(a)],
        pool: { min_idle: 0 },
        health: { kind: 'none' },
      },
    },
  });
  const next = cfgOf(api(newPort));
  const summary = await lb.reload(next);
  assert.deepEqual(summary, { added: ['api'], removed: ['web'], changed: [] });
  assert.equal(await httpGet(newPort), 'a');
  await assert.rejects(openClient(port), /ECONNREFUSED/);
  held.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  const rest = await readBytes(held, 10);
  assert.ok(rest.length > 0, 'the session of the removed service carries on');
  held.destroy();

  const moved = await refusedPort();
  assert.deepEqual(await lb.reload(cfgOf(api(moved))), {
    added: [],
    removed: [],
    changed: ['api'],
  });
  assert.equal(await httpGet(moved), 'a');
  await assert.rejects(openClient(newPort), /ECONNREFUSED/);
});

function fileConfig(listen: number, admin: number, backends: string[]): string {
  return [
    '[log]',
    'level = "info"',
    '[admin]',
    `listen = "127.0.0.1:${admin}"`,
    '[services.web]',
    `listen = "127.0.0.1:${listen}"`,
    `backends = [${backends.join(', ')}]`,
    'connect_timeout = "1s"',
    '[services.web.health]',
    'kind = "tcp"',
    'interval = "500ms"',
    '',
  ].join('\n');
}

test('reload under load: 10 reloads (weights, add, remove, one invalid file) with zero errors and zero non-2xx', async (t) => {
  const ports = [await httpServer(t, 'a'), await httpServer(t, 'b'), await httpServer(t, 'c')];
  const [lbPort, adminPort] = [await refusedPort(), await refusedPort()];
  const q = (p: number, w = 1) => `{ address = "127.0.0.1:${p}", weight = ${w} }`;
  const versions = [
    [q(ports[0] as number), q(ports[1] as number)],
    [q(ports[0] as number, 3), q(ports[1] as number)],
    [q(ports[0] as number, 3), q(ports[1] as number), q(ports[2] as number)],
    [q(ports[1] as number), q(ports[2] as number)],
    null,
    [q(ports[0] as number), q(ports[2] as number, 2)],
    [q(ports[0] as number), q(ports[1] as number), q(ports[2] as number)],
    [q(ports[2] as number)],
    [q(ports[1] as number, 5), q(ports[2] as number)],
    [q(ports[0] as number), q(ports[1] as number)],
    [q(ports[0] as number), q(ports[1] as number), q(ports[2] as number)],
  ];
  const file = tempConfig(t, fileConfig(lbPort, adminPort, versions[0] as string[]));
  const child = spawnCli(t, ['run', '--config', file]);
  await waitFor(() => child.stdout().includes('blitz-lb started'), 10_000, 'start');

  const load = autocannon({
    url: `http://127.0.0.1:${lbPort}/`,
    connections: 20,
    duration: 6,
    headers: { connection: 'close' },
  });
  for (let i = 1; i < versions.length; i++) {
    await new Promise((r) => setTimeout(r, 400));
    const v = versions[i];
    writeFileSync(file, v ? fileConfig(lbPort, adminPort, v) : 'this is = = not toml');
    const before = (child.stdout().match(/config reloaded|reload failed/g) ?? []).length;
    child.proc.kill('SIGHUP');
    await waitFor(
      () => (child.stdout().match(/config reloaded|reload failed/g) ?? []).length > before,
      5000,
      `reload ${i}`,
    );
  }
  const r = await load;
  assert.equal(r.errors, 0, 'no connection errors');
  assert.equal(r.timeouts, 0);
  assert.equal(r.non2xx, 0);
  assert.ok(r.requests.total > 100, `load ran: ${r.requests.total} requests`);
  assert.equal((child.stdout().match(/config reloaded/g) ?? []).length, 9);
  assert.equal(
    (child.stdout().match(/reload failed; the old config keeps running/g) ?? []).length,
    1,
  );

  // POST /api/reload does the same, and says why when the file is bad.
  writeFileSync(file, fileConfig(lbPort, adminPort, [q(ports[0] as number, 7)]));
  const ok = await fetch(`http://127.0.0.1:${adminPort}/api/reload`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
  });
  assert.equal(ok.status, 200);
  writeFileSync(file, fileConfig(lbPort, adminPort, ['"nope"']));
  const bad = await fetch(`http://127.0.0.1:${adminPort}/api/reload`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
  });
  assert.equal(bad.status, 400);
  assert.match(
    ((await bad.json()) as { error: string }).error,
    /backends\[0\]: expected "host:port", got "nope"/,
  );
  const svcs = (await (await fetch(`http://127.0.0.1:${adminPort}/api/services`)).json()) as {
    services: { backends: { address: string; weight: number }[] }[];
  };
  assert.deepEqual(
    svcs.services[0]?.backends.map((b) => b.weight),
    [7],
    'the last valid config stays in force',
  );
  child.proc.kill('SIGTERM');
  assert.equal(await child.exited, 0);
});

test('drain during load: no new sessions go to the backend; its open session finishes', async (t) => {
  // Keep-alive long enough that the long session outlives the load.
  const b = await httpServer(t, 'b', 30_000);
  const c = await httpServer(t, 'c', 30_000);
  const lb = await startLb(t, svc([addr(b), addr(c)]));
  const s = lb.service('web');
  const port = lb.address('web').port;
  // A long session on b, opened before the drain.
  let long: Socket | undefined;
  while (!long) {
    const cl = await openClient(port);
    cl.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await readBytes(cl, 10);
    if (s.backends.get(addr(b))?.active === 1) long = cl;
    else cl.destroy();
  }
  const b0 = s.backends.get(addr(b))?.sessionsTotal ?? 0;
  const load = autocannon({
    url: `http://127.0.0.1:${port}/`,
    connections: 10,
    duration: 3,
    headers: { connection: 'close' },
  });
  // The load is under way on both backends before the drain.
  await waitFor(
    () => (s.backends.get(addr(b))?.sessionsTotal ?? 0) >= b0 + 5,
    5000,
    'sessions on the backend to drain',
  );
  lb.drainBackend('web', addr(b));
  // Dials already under way when the drain came may still land; wait for them, then count.
  const bb = s.backends.get(addr(b));
  await waitFor(() => bb?.active === 1, 2000, 'in-flight dials to settle');
  const atDrain = bb?.sessionsTotal ?? 0;
  const r = await load;
  assert.equal(r.errors + r.non2xx, 0);
  assert.equal(bb?.sessionsTotal, atDrain, 'no new session after the drain');
  assert.ok((s.backends.get(addr(c))?.sessionsTotal ?? 0) > 50, 'the other backend took the load');
  long.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  const [data] = (await once(long, 'data')) as [Buffer];
  assert.match(data.toString(), /^HTTP\/1\.1 200/);
  long.destroy();
});

test('reload: a new service with a bad certificate fails the reload and leaves no timer of the services it created', async (t) => {
  const be = await echoServer(t);
  const base = svc([addr(be)]);
  const lb = await startLb(t, base);
  const cert = tempConfig(t, 'not a certificate\n', 'bad.pem');
  const web = (base.services as Record<string, unknown>).web as Record<string, unknown>;
  const next = cfgOf({
    ...base,
    services: {
      web,
      plain: { ...web, listen: '127.0.0.1:0' },
      secure: { ...web, listen: '127.0.0.1:0', tls: { cert, key: cert } },
    },
  });
  // Admission's sweep interval, one per service created: each must be cleared.
  const sweeps = new Set<number>();
  let created = 0;
  const hook = createHook({
    init(id, type) {
      if (type !== 'Timeout' || !/admission\.js/.test(new Error().stack ?? '')) return;
      sweeps.add(id);
      created++;
    },
    destroy(id) {
      sweeps.delete(id);
    },
  }).enable();
  t.after(() => hook.disable());
  await assert.rejects(lb.reload(next), /bad\.pem/);
  assert.ok(created >= 1, 'a service was created before the certificate failed');
  await waitFor(() => sweeps.size === 0, 2000, `${sweeps.size} admission timers cleared`);
  assert.throws(() => lb.service('plain'), /plain/, 'the failed reload added nothing');
});
