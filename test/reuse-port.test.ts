import assert from 'node:assert/strict';
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  type Balancer,
  churn,
  longConnection,
  startBalancer,
  upgradeConfig,
} from './helpers/lifecycle.js';
import { echoServer, openClient, readBytes, refusedPort, waitFor } from './helpers/servers.js';

/** The inodes of the sockets listening on TCP `port` (/proc/net/tcp, state 0A), sorted. */
function listeningInodes(port: number): string[] {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[1]?.endsWith(`:${hexPort}`) && f[3] === '0A')
    .map((f) => f[9] as string)
    .sort();
}

/** The socket inodes process `pid` has open. */
function socketInodes(pid: number): Set<string> {
  const out = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m?.[1]) out.add(m[1]);
    } catch {}
  }
  return out;
}

interface Workers {
  workers: { worker: number; pid: number | null; state: string; restarts: number }[];
  services: { workers: { worker: number; accepted: number }[] }[];
}

const view = async (lb: Balancer): Promise<Workers> =>
  (await lb.admin('/api/services')).body as unknown as Workers;

/** The listening socket each worker holds (its pid's open inodes among the port's listeners). */
async function socketPerWorker(lb: Balancer): Promise<Map<number, string[]>> {
  const inodes = listeningInodes(lb.port);
  const out = new Map<number, string[]>();
  for (const w of (await view(lb)).workers) {
    const mine = socketInodes(w.pid as number);
    out.set(
      w.worker,
      inodes.filter((i) => mine.has(i)),
    );
  }
  return out;
}

async function echoOnce(port: number, text: string): Promise<void> {
  const c = await openClient(port);
  c.write(text);
  assert.equal((await readBytes(c, text.length)).toString(), text);
  c.destroy();
}

const linux = process.platform === 'linux' ? false : 'SO_REUSEPORT balancing is Linux only';

test('workers = 2 on SO_REUSEPORT: each worker listens on a socket of its own and both take clients; BLITZ_LB_REUSE_PORT=0 shares one', {
  skip: linux,
}, async (t) => {
  const be = await echoServer(t);
  const lb = await startBalancer(t, upgradeConfig(be, 'workers = 2'));
  const inodes = listeningInodes(lb.port);
  assert.equal(inodes.length, 2, 'two sockets in the port group');
  const per = await socketPerWorker(lb);
  assert.equal(per.get(1)?.length, 1);
  assert.equal(per.get(2)?.length, 1);
  assert.notEqual(per.get(1)?.[0], per.get(2)?.[0], 'not the same socket');
  // The kernel hashes each connection's 4-tuple over the two: 80 clients all on one worker
  // would be a 2^-79 event.
  for (let i = 0; i < 80; i++) await echoOnce(lb.port, `c${i}`);
  await waitFor(
    async () => ((await view(lb)).services[0]?.workers ?? []).every((w) => w.accepted > 0),
    5000,
    'both workers to have taken clients',
  );
  const accepted = ((await view(lb)).services[0]?.workers ?? []).map((w) => w.accepted);
  assert.equal(
    accepted.reduce((a, b) => a + b, 0),
    80,
  );

  const shared = await startBalancer(t, upgradeConfig(be, 'workers = 2'), {
    BLITZ_LB_REUSE_PORT: '0',
  });
  assert.equal(listeningInodes(shared.port).length, 1, 'one socket shared through node:cluster');
  await echoOnce(shared.port, 'shared');
});

test('workers = 2 on SO_REUSEPORT: clients queued on a worker that dies are served by its next worker, on the same socket, not reset', {
  skip: linux,
}, async (t) => {
  const be = await echoServer(t);
  const lb = await startBalancer(t, upgradeConfig(be, 'workers = 2'));
  const before = await socketPerWorker(lb);
  const victim = (await view(lb)).workers.find((w) => w.worker === 1)?.pid as number;
  // Stopped, worker 1 accepts nothing: the kernel queues the clients it hashes to its socket.
  process.kill(victim, 'SIGSTOP');
  t.after(() => {
    try {
      process.kill(victim, 'SIGKILL');
    } catch {}
  });
  const clients = await Promise.all(
    Array.from({ length: 24 }, async (_, i) => {
      const c = await openClient(lb.port);
      c.write(`q${i}`);
      return c;
    }),
  );
  const echoes = clients.map((c, i) => readBytes(c, `q${i}`.length).then((b) => b.toString()));
  process.kill(victim, 'SIGKILL');
  await waitFor(
    async () => (await view(lb)).workers.every((w) => w.state === 'up' && w.pid !== victim),
    10_000,
    'worker 1 to be back',
  );
  // 24 clients all hashed to worker 2's socket would be a 2^-24 event: some were queued on 1's.
  assert.deepEqual(
    await Promise.all(echoes),
    clients.map((_, i) => `q${i}`),
  );
  for (const c of clients) c.destroy();
  const accepted = (await view(lb)).services[0]?.workers.find((w) => w.worker === 1)?.accepted;
  assert.ok((accepted ?? 0) > 0, 'the new worker 1 served the queued clients');
  assert.deepEqual(await socketPerWorker(lb), before, 'the same socket per slot');
});

test('workers = 2 on SO_REUSEPORT: a reload that adds a service binds it in every worker; one that removes it closes every socket of it', {
  skip: linux,
}, async (t) => {
  const be = await echoServer(t);
  const toml = upgradeConfig(be, 'workers = 2');
  const lb = await startBalancer(t, toml);
  const other = await refusedPort();
  const extra = `[services.other]\nlisten = "127.0.0.1:${other}"\nbackends = ["127.0.0.1:${be}"]\nhealth = { kind = "none" }\n`;
  writeFileSync(lb.file, `${toml(lb.port, lb.adminPort)}${extra}`);
  assert.equal((await lb.admin('/api/reload', 'POST')).status, 200);
  assert.equal(listeningInodes(other).length, 2);
  await echoOnce(other, 'other');
  writeFileSync(lb.file, toml(lb.port, lb.adminPort));
  assert.equal((await lb.admin('/api/reload', 'POST')).status, 200);
  // The primary let its copies go too: nothing listens, so a client is refused, not left waiting.
  await waitFor(() => listeningInodes(other).length === 0, 5000, 'the sockets to close');
  await assert.rejects(openClient(other), /ECONNREFUSED/);
  assert.equal(listeningInodes(lb.port).length, 2);
});

test('an upgrade from workers = 2 on SO_REUSEPORT to workers = 1 hands both sockets over; the new process accepts on both, no client fails', {
  skip: linux,
}, async (t) => {
  const be = await echoServer(t);
  const lb = await startBalancer(t, upgradeConfig(be, 'workers = 2'));
  const inodes = listeningInodes(lb.port);
  const long = await longConnection(lb.port);
  const load = churn(t, lb.port, 4);
  await waitFor(() => load.ok >= 50, 20_000, 'load before the upgrade');
  writeFileSync(lb.file, upgradeConfig(be, 'workers = 1')(lb.port, lb.adminPort));
  const r = await lb.admin('/api/upgrade', 'POST');
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const newPid = r.body.pid as number;
  assert.equal(await long.ping('still'), 'still');
  long.socket.end();
  assert.equal(await lb.exited, 0);
  const at = load.ok;
  await waitFor(() => load.ok >= at + 200, 20_000, 'load served by the new process alone');
  await load.stop();
  assert.deepEqual(load.failed, [], 'no connection failed');
  assert.deepEqual(listeningInodes(lb.port), inodes, 'the same two sockets');
  const held = socketInodes(newPid);
  assert.ok(
    inodes.every((i) => held.has(i)),
    'the new process holds both',
  );
});
