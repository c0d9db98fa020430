import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { test } from 'node:test';
import { statFields } from '../bench/lib/proc.js';
import { type RunningCli, runBalancer, sample, twoWorkers } from './helpers/cluster.js';
import {
  addr,
  echoServer,
  ended,
  httpGet,
  httpServer,
  listen,
  openClient,
  readBytes,
  refusedPort,
  waitFor,
} from './helpers/servers.js';

/** Resolves with `p`, or fails the test after `ms` instead of hanging. */
async function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

interface BackendView {
  address: string;
  state: string;
  reason: string | null;
  sessionsTotal: number;
}
interface ServiceView {
  name: string;
  activeSessions: number;
  counters: { accepted: number };
  workers: { worker: number; pid: number; activeSessions: number; accepted: number }[];
  backends: BackendView[];
}
interface ApiView {
  services: ServiceView[];
  workers: { worker: number; pid: number | null; state: string; restarts: number }[];
}

const api = async (lb: RunningCli): Promise<ApiView> =>
  (await lb.admin('/api/services')).body as ApiView;

/** A config with two workers and one service "web" in front of `backends`. */
function clusterToml(
  backends: string[],
  extra = '',
  health = 'health = { kind = "tcp", interval = "100ms" }',
) {
  return twoWorkers(backends, [health, extra]);
}

/**
 * Opens echo sessions, 4 at a time, until both workers hold some (at most 64).
 * With SCHED_NONE the kernel picks the accepting worker, and a short burst
 * can land on one of them.
 */
async function sessionsOnBothWorkers(lb: RunningCli): Promise<Socket[]> {
  const clients: Socket[] = [];
  while (clients.length < 64) {
    clients.push(...(await openSessions(lb.port, 4, clients.length)));
    const web = (await api(lb)).services[0] as ServiceView;
    if (web.workers.length === 2 && web.workers.every((w) => w.activeSessions > 0)) return clients;
  }
  throw new Error('64 sessions all landed on one worker');
}

/** Opens `n` sessions to an echo backend and proves each is spliced. */
async function openSessions(port: number, n: number, from = 0): Promise<Socket[]> {
  const out: Socket[] = [];
  for (let i = from; i < from + n; i++) {
    const c = await openClient(port);
    c.write(`s${i}`);
    assert.equal((await readBytes(c, `s${i}`.length)).toString(), `s${i}`);
    out.push(c);
  }
  return out;
}

test('workers = 2: both workers take sessions; /api/services and /metrics add them up and break them down per worker', async (t) => {
  const be = await echoServer(t);
  const lb = await runBalancer(t, clusterToml([addr(be)]));
  const clients = await sessionsOnBothWorkers(lb);
  t.after(() => {
    for (const c of clients) c.destroy();
  });
  const n = clients.length;
  const view = await api(lb);
  const web = view.services[0] as ServiceView;
  assert.equal(web.activeSessions, n);
  assert.equal(web.counters.accepted, n);
  assert.equal(web.backends[0]?.state, 'up');
  assert.equal(web.workers.length, 2);
  assert.equal(
    web.workers.reduce((sum, w) => sum + w.activeSessions, 0),
    n,
  );
  for (const w of web.workers) assert.ok(w.activeSessions > 0, `worker ${w.worker} took sessions`);
  assert.deepEqual(
    view.workers.map((w) => [w.worker, w.state, w.restarts]),
    [
      [1, 'up', 0],
      [2, 'up', 0],
    ],
  );
  const m = (await lb.admin('/metrics')).text;
  assert.equal(sample(m, 'blitz_lb_accepted_total{service="web"}'), n);
  assert.equal(sample(m, 'blitz_lb_active_sessions{service="web"}'), n);
  assert.equal(sample(m, 'blitz_lb_workers'), 2);
  assert.equal(sample(m, `blitz_lb_backend_up{service="web",backend="${addr(be)}"}`), 1);
  const perWorker = [1, 2].map(
    (w) => sample(m, `blitz_lb_worker_active_sessions{service="web",worker="${w}"}`) ?? -1,
  );
  assert.equal((perWorker[0] ?? 0) + (perWorker[1] ?? 0), n);
  assert.ok(perWorker.every((n) => n > 0));
});

test('workers = 2: health probes run once, in the primary, not once per worker', async (t) => {
  let probes = 0;
  const server = createHttpServer((req, res) => {
    if (req.url === '/health') probes++;
    res.end('ok');
  });
  const be = await listen(t, server as unknown as Server);
  const lb = await runBalancer(
    t,
    clusterToml([addr(be)], '', 'health = { kind = "http", path = "/health", interval = "100ms" }'),
  );
  const before = probes;
  const start = Date.now();
  await new Promise((r) => setTimeout(r, 1500));
  const rounds = (Date.now() - start) / 100;
  const seen = probes - before;
  // One prober: about `rounds` probes (±10 % jitter). One per worker would be twice that.
  assert.ok(seen >= rounds * 0.6 && seen <= rounds * 1.4, `${seen} probes in ${rounds} intervals`);
  assert.equal((await api(lb)).services[0]?.backends[0]?.state, 'up');
});

test('workers = 2: a probe verdict and an operator drain in the primary reach every worker', async (t) => {
  let aHealthy = true;
  const a = createHttpServer((req, res) => {
    if (req.url === '/health') res.statusCode = aHealthy ? 200 : 503;
    res.end('a');
  });
  const aPort = await listen(t, a as unknown as Server);
  const bPort = await httpServer(t, 'b');
  const lb = await runBalancer(
    t,
    clusterToml(
      [addr(aPort), addr(bPort)],
      '',
      'health = { kind = "http", path = "/health", interval = "100ms", fall = 1, rise = 1 }',
    ),
  );
  const spread = async (): Promise<Set<string>> => {
    const seen = new Set<string>();
    for (let i = 0; i < 12; i++) seen.add(await httpGet(lb.port));
    return seen;
  };
  assert.deepEqual([...(await spread())].sort(), ['a', 'b']);
  // A answers traffic but fails its probe: only the primary probes, so only its verdict can stop the workers.
  aHealthy = false;
  const state = async (): Promise<string | undefined> =>
    (await api(lb)).services[0]?.backends.find((x) => x.address === addr(aPort))?.state;
  await waitFor(async () => (await state()) === 'down', 5000, 'the probe verdict');
  // The primary's verdict goes to the workers over IPC, which a worker may read after a
  // client's connection: every worker has it once no request reaches a.
  const only = (names: string[]) => async () =>
    JSON.stringify([...(await spread())].sort()) === JSON.stringify(names);
  await waitFor(only(['b']), 5000, 'every worker to take b alone');
  aHealthy = true;
  await waitFor(async () => (await state()) === 'up', 5000, 'the backend to come back');
  await waitFor(only(['a', 'b']), 5000, 'every worker to take a again');
  // An operator drain through the admin API.
  const r = await lb.admin(`/api/services/web/backends/${addr(aPort)}/drain`, { method: 'POST' });
  assert.equal(r.status, 200);
  assert.equal((r.body as { backend: BackendView }).backend.state, 'draining');
  await waitFor(only(['b']), 5000, 'every worker to drain a');
});

test('workers = 2: dial failures seen by workers take a backend down in the primary (health kind "none")', async (t) => {
  const dead = await refusedPort();
  const be = await echoServer(t);
  const lb = await runBalancer(
    t,
    clusterToml(
      [addr(dead), addr(be)],
      'pool = { min_idle = 0, max_idle = 0 }',
      'health = { kind = "none", fall = 2 }',
    ),
  );
  const clients = await openSessions(lb.port, 6);
  for (const c of clients) c.destroy();
  const view = await api(lb);
  const d = view.services[0]?.backends.find((x) => x.address === addr(dead));
  assert.equal(d?.state, 'down');
  assert.match(d?.reason ?? '', /^dial: /);
});

test('workers = 2: a worker killed with SIGKILL is logged and restarted; the other serves meanwhile; totals do not go back', async (t) => {
  const be = await httpServer(t, 'b');
  const lb = await runBalancer(t, clusterToml([addr(be)]));
  // Traffic until one worker has counted some: its totals must outlive it.
  let sent = 0;
  let web = (await api(lb)).services[0] as ServiceView;
  while (!web.workers.some((w) => w.accepted >= 3)) {
    assert.equal(await httpGet(lb.port), 'b');
    sent++;
    web = (await api(lb)).services[0] as ServiceView;
  }
  await lb.admin('/metrics');
  const before = await api(lb);
  const victimSlot = web.workers.find((w) => w.accepted >= 3) as ServiceView['workers'][number];
  const victim = victimSlot.pid;
  const other = before.workers.find((w) => w.pid !== victim);
  process.kill(victim, 'SIGKILL');
  await waitFor(
    () => lb.logs().some((l) => l.msg?.toString().startsWith('worker died') === true),
    5000,
    'the primary to log the death',
  );
  const died = lb.logs().find((l) => l.msg?.toString().startsWith('worker died'));
  assert.equal(died?.workerPid, victim);
  assert.equal(died?.signal, 'SIGKILL');
  for (let i = 0; i < 10; i++) assert.equal(await httpGet(lb.port), 'b');
  await waitFor(() => lb.logs().filter((l) => l.msg === 'worker up').length === 3, 5000, 'restart');
  const after = await api(lb);
  const slot = after.workers.find((w) => w.worker === victimSlot.worker);
  assert.equal(slot?.state, 'up');
  assert.equal(slot?.restarts, 1);
  assert.notEqual(slot?.pid, victim);
  assert.equal(
    after.workers.find((w) => w.pid === other?.pid)?.restarts,
    0,
    'the other was left alone',
  );
  for (let i = 0; i < 6; i++) assert.equal(await httpGet(lb.port), 'b');
  const total = sent + 10 + 6;
  assert.equal(((await api(lb)).services[0] as ServiceView).counters.accepted, total);
  const m = (await lb.admin('/metrics')).text;
  assert.equal(sample(m, `blitz_lb_worker_restarts_total{worker="${victimSlot.worker}"}`), 1);
  assert.equal(sample(m, 'blitz_lb_accepted_total{service="web"}'), total);
  assert.equal(sample(m, `blitz_lb_sessions_total{service="web",backend="${addr(be)}"}`), total);
});

test('workers = 2: SIGHUP reads the file once, in the primary, and every worker applies it; a bad file changes nothing', async (t) => {
  const a = await httpServer(t, 'a');
  const b = await httpServer(t, 'b');
  const toml = clusterToml([addr(a)]);
  const lb = await runBalancer(t, toml);
  writeFileSync(lb.file, clusterToml([addr(a), addr(b)])(lb.port, lb.adminPort));
  lb.child.proc.kill('SIGHUP');
  await waitFor(
    () => lb.logs().filter((l) => l.msg === 'config reloaded').length === 3,
    5000,
    'the primary and both workers to apply the reload',
  );
  const reloads = lb.logs().filter((l) => l.msg === 'config reloaded');
  assert.deepEqual(reloads.map((l) => l.worker ?? 0).sort(), [0, 1, 2]);
  const seen = new Set<string>();
  for (let i = 0; i < 12; i++) seen.add(await httpGet(lb.port));
  assert.deepEqual([...seen].sort(), ['a', 'b']);
  const web = (await api(lb)).services[0] as ServiceView;
  assert.equal(web.backends.length, 2);
  writeFileSync(lb.file, 'this is = = not toml');
  lb.child.proc.kill('SIGHUP');
  await waitFor(
    () => lb.logs().some((l) => l.msg === 'reload failed; the old config keeps running'),
    5000,
    'the failed reload',
  );
  assert.equal(lb.logs().filter((l) => l.msg === 'config reloaded').length, 3);
  assert.equal(((await api(lb)).services[0] as ServiceView).backends.length, 2);
});

test('workers = 2: SIGTERM drains every worker: no new sessions, open ones finish, exit 0', async (t) => {
  const be = await echoServer(t);
  const lb = await runBalancer(t, clusterToml([addr(be)]));
  const clients = await sessionsOnBothWorkers(lb);
  lb.child.proc.kill('SIGTERM');
  const refused = async (): Promise<boolean> => {
    const c = connect({ port: lb.port, host: '127.0.0.1' });
    try {
      await once(c, 'connect');
      c.destroy();
      return false;
    } catch {
      return true;
    }
  };
  await waitFor(refused, 5000, 'the listeners to close');
  for (const [i, c] of clients.entries()) {
    c.write(`after${i}`);
    assert.equal((await readBytes(c, `after${i}`.length)).toString(), `after${i}`);
    c.end();
  }
  assert.equal(await lb.child.exited, 0);
});

test('workers = 2: a listen address in use stops the start with one clear line, exit 1', async (t) => {
  const taken = await listen(t, createServer());
  const be = await echoServer(t);
  await assert.rejects(
    runBalancer(t, (_port, adminPort) => clusterToml([addr(be)])(taken, adminPort)),
    new RegExp(`listen 127\\.0\\.0\\.1:${taken}: address already in use`),
  );
});

test('workers = 2: when the primary is killed, the workers exit too: nothing serves unmanaged', async (t) => {
  const be = await echoServer(t);
  const lb = await runBalancer(t, clusterToml([addr(be)]));
  const pids = (await api(lb)).workers.map((w) => w.pid as number);
  assert.equal(pids.length, 2);
  // Gone, or a zombie waiting for whoever inherited it to reap it.
  const alive = (pid: number): boolean => {
    try {
      return statFields(pid)[0] !== 'Z';
    } catch {
      return false;
    }
  };
  t.after(() => {
    for (const p of pids) if (alive(p)) process.kill(p, 'SIGKILL');
  });
  lb.child.proc.kill('SIGKILL');
  await waitFor(() => pids.every((p) => !alive(p)), 8000, 'the orphaned workers to exit');
});

test('workers = 2: a reload the workers cannot apply (new listen address in use) leaves the old config everywhere', async (t) => {
  const a = await httpServer(t, 'a');
  const b = await httpServer(t, 'b');
  const taken = await listen(t, createServer());
  const lb = await runBalancer(t, clusterToml([addr(a)]));
  writeFileSync(
    lb.file,
    `${clusterToml([addr(a), addr(b)])(lb.port, lb.adminPort)}
[services.other]
listen = "127.0.0.1:${taken}"
backends = ["${addr(b)}"]
`,
  );
  const r = await lb.admin('/api/reload', { method: 'POST' });
  assert.equal(r.status, 400);
  assert.match(
    (r.body as { error: string }).error,
    new RegExp(
      `worker [12]: listen 127\\.0\\.0\\.1:${taken}: address already in use.*the old config stays in force`,
    ),
  );
  const view = await api(lb);
  assert.deepEqual(
    view.services.map((s) => [s.name, s.backends.map((x) => x.address)]),
    [['web', [addr(a)]]],
  );
  for (let i = 0; i < 6; i++)
    assert.equal(await httpGet(lb.port), 'a', 'b was rolled back in the workers');
});

test('workers = 2: a worker that keeps dying is restarted after 100, 200, 400 ms', async (t) => {
  const be = await echoServer(t);
  const lb = await runBalancer(t, clusterToml([addr(be)]));
  const upLogs = (): Record<string, unknown>[] =>
    lb.logs().filter((l) => l.msg === 'worker up' && l.worker === 1);
  for (let i = 0; i < 3; i++) {
    const ups = upLogs();
    process.kill(ups[ups.length - 1]?.workerPid as number, 'SIGKILL');
    await waitFor(() => upLogs().length === ups.length + 1, 5000, `restart ${i + 1}`);
  }
  const delays = lb
    .logs()
    .filter((l) => l.msg?.toString().startsWith('worker died'))
    .map((l) => l.restartInMs);
  assert.deepEqual(delays, [100, 200, 400]);
  const view = await api(lb);
  assert.equal(view.workers[0]?.restarts, 3);
  assert.equal(view.workers[1]?.restarts, 0);
});

test('workers = 2: a second SIGTERM during the drain ends open sessions at once', async (t) => {
  const be = await echoServer(t);
  const lb = await runBalancer(t, twoWorkers([addr(be)], ['health = { kind = "tcp" }']));
  const clients = await sessionsOnBothWorkers(lb);
  const cut = clients.map(ended);
  lb.child.proc.kill('SIGTERM');
  await waitFor(
    () => lb.logs().some((l) => l.msg?.toString().startsWith('stopping')),
    5000,
    'drain',
  );
  const start = Date.now();
  lb.child.proc.kill('SIGTERM');
  await within(10_000, Promise.all(cut), 'the sessions to end');
  assert.ok(Date.now() - start < 3000, 'cut by the second signal, not the 5 s deadline');
  assert.equal(await lb.child.exited, 0);
});

test('workers = 2: disable through the admin API ends that backend’s sessions in every worker; enable brings it back', async (t) => {
  const a = await echoServer(t);
  const lb = await runBalancer(t, clusterToml([addr(a)]));
  const clients = await sessionsOnBothWorkers(lb);
  const cut = clients.map(ended);
  const r = await lb.admin(`/api/services/web/backends/${addr(a)}/disable`, { method: 'POST' });
  assert.equal(r.status, 200);
  assert.equal((r.body as { backend: BackendView }).backend.state, 'disabled');
  await within(5000, Promise.all(cut), 'the disabled backend’s sessions to end');
  await waitFor(
    async () => ((await api(lb)).services[0] as ServiceView).activeSessions === 0,
    5000,
    'sessions to end',
  );
  await lb.admin(`/api/services/web/backends/${addr(a)}/enable`, { method: 'POST' });
  // Disabled is out even for all_down = "try-all": a session now proves the workers took the enable.
  for (const c of await sessionsOnBothWorkers(lb)) c.destroy();
});

test('workers = 2: a weight set through the admin API reaches every worker', async (t) => {
  const a = await httpServer(t, 'a');
  const b = await httpServer(t, 'b');
  const lb = await runBalancer(t, clusterToml([addr(a), addr(b)]));
  const w = await lb.admin(`/api/services/web/backends/${addr(a)}/weight`, {
    method: 'PUT',
    body: '{"weight": 7}',
  });
  assert.equal(w.status, 200);
  assert.equal((w.body as { backend: { weight: number } }).backend.weight, 7);
  // Each worker's own rotation sends 7 of every 8 to a; with weights 1:1 it would be half.
  const counts = { a: 0, b: 0 } as Record<string, number>;
  for (let i = 0; i < 32; i++) {
    const name = await httpGet(lb.port);
    counts[name] = (counts[name] ?? 0) + 1;
  }
  assert.ok((counts.a ?? 0) >= 24, `a ${counts.a}, b ${counts.b}`);
});
