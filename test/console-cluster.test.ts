import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { runBalancer, twoWorkers } from './helpers/cluster.js';
import {
  addr,
  echoServer,
  ended,
  httpGet,
  httpServer,
  openClient,
  waitFor,
} from './helpers/servers.js';

test('workers = 2: a backend added and one removed through the API reach every worker', async (t) => {
  const a = await httpServer(t, 'a');
  const b = await httpServer(t, 'b');
  const lb = await runBalancer(t, twoWorkers([addr(a)]));
  const post = await lb.admin(`/api/services/web/backends/${addr(b)}`, {
    method: 'POST',
    body: '{"weight": 1}',
  });
  assert.equal(post.status, 201, post.text);
  const bad = await lb.admin('/api/services/web/backends/127.0.0.1:2', {
    method: 'POST',
    body: '{"weight": "heavy"}',
  });
  assert.equal(bad.status, 400);
  assert.equal(
    (await lb.admin(`/api/services/web/backends/${addr(a)}`, { method: 'DELETE' })).status,
    200,
  );
  // Both workers follow the primary's membership: no worker still sends anyone to a.
  await waitFor(async () => (await httpGet(lb.port)) === 'b', 5000, 'the change to reach a worker');
  const seen = new Set<string>();
  for (let i = 0; i < 20; i++) seen.add(await httpGet(lb.port));
  assert.deepEqual([...seen], ['b']);
  const view = (await lb.admin('/api/services')).body as {
    services: { backends: { address: string; sessionsTotal: number }[] }[];
  };
  assert.deepEqual(
    view.services[0]?.backends.map((x) => x.address),
    [addr(b)],
  );
});

test('workers = 2: sessions listed from every worker, paged, and one ended in its worker', async (t) => {
  const e = await echoServer(t);
  const lb = await runBalancer(t, twoWorkers([addr(e)]));
  const clients: Socket[] = [];
  for (let i = 0; i < 4; i++) {
    const c = await openClient(lb.port);
    c.write('x');
    await once(c, 'data');
    clients.push(c);
  }
  t.after(() => {
    for (const c of clients) c.destroy();
  });
  type Page = { sessions: { id: string; client: string }[]; total: number; next: string | null };
  const p1 = (await lb.admin('/api/services/web/sessions?limit=3')).body as Page;
  assert.equal(p1.total, 4);
  assert.equal(p1.sessions.length, 3);
  for (const s of p1.sessions) assert.match(s.id, /^[12]\.\d+$/);
  assert.ok(p1.next);
  const p2 = (await lb.admin(`/api/services/web/sessions?limit=3&after=${p1.next}`)).body as Page;
  assert.equal(p2.sessions.length, 1);
  assert.equal(p2.next, null);
  const all = [...p1.sessions, ...p2.sessions];
  assert.equal(new Set(all.map((s) => s.id)).size, 4);
  const ports = clients.map((c) => `127.0.0.1:${c.localPort}`).sort();
  assert.deepEqual(all.map((s) => s.client).sort(), ports);

  const victim = all[3] as { id: string; client: string };
  const client = clients.find((c) => `127.0.0.1:${c.localPort}` === victim.client) as Socket;
  const gone = ended(client);
  const del = await lb.admin(`/api/services/web/sessions/${victim.id}`, { method: 'DELETE' });
  assert.equal(del.status, 200, del.text);
  await gone;
  await waitFor(
    async () => ((await lb.admin('/api/services/web/sessions')).body as Page).total === 3,
  );
  assert.equal(
    (await lb.admin(`/api/services/web/sessions/${victim.id}`, { method: 'DELETE' })).status,
    404,
  );
  assert.equal((await lb.admin('/api/services/web/sessions/17', { method: 'DELETE' })).status, 400);
});

test('workers = 2: /api/info names the workers; /metrics keeps one build_info and a start time', async (t) => {
  const a = await httpServer(t, 'a');
  const lb = await runBalancer(t, twoWorkers([addr(a)]));
  const info = (await lb.admin('/api/info')).body as {
    workers: number;
    workerStatus: { worker: number; state: string }[];
    configPath: string;
  };
  assert.equal(info.workers, 2);
  assert.deepEqual(
    info.workerStatus.map((w) => [w.worker, w.state]),
    [
      [1, 'up'],
      [2, 'up'],
    ],
  );
  assert.equal(info.configPath, lb.file);
  const m = (await lb.admin('/metrics')).text;
  assert.equal(m.match(/^blitz_lb_build_info\{/gm)?.length, 1);
  assert.match(m, /^process_start_time_seconds \d+/m);
  assert.match(m, /^blitz_lb_backend_state\{service="web",backend="[^"]+",state="up"\} 1$/m);
  assert.match(
    m,
    /^blitz_lb_dial_failures_total\{service="web",backend="[^"]+",cause="refused"\} 0$/m,
  );
});
