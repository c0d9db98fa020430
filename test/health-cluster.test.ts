import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { runBalancer, sample, twoWorkers } from './helpers/cluster.js';
import { addr, exchange, listen, openClient, scriptedServer, waitFor } from './helpers/servers.js';

interface BackendJson {
  state: string;
  agent: { reply: string } | null;
}
interface ViewJson {
  services: { health: string; counters: { refusedDenied: number }; backends: BackendJson[] }[];
}

test('workers = 2: deny in every worker, the agent in the primary reaching the workers, and on_down ending sessions in the worker that holds them', async (t) => {
  const backend = createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  const bePort = await listen(t, backend);
  const agentSays = { line: 'up' };
  const agentPort = await scriptedServer(t, (s) => s.end(`${agentSays.line}\n`));
  const lb = await runBalancer(
    t,
    twoWorkers(
      [addr(bePort)],
      [
        'deny = ["127.0.0.2"]',
        `health = { kind = "tcp", interval = "100ms", fall = 1, rise = 1, agent_port = ${agentPort}, agent_interval = "100ms", on_down = "shutdown-sessions" }`,
      ],
    ),
  );
  const view = async () => (await lb.admin('/api/services')).body as ViewJson;
  for (let i = 0; i < 4; i++) assert.equal(await exchange(lb.port, '127.0.0.1', '127.0.0.1'), 'hi');
  for (let i = 0; i < 4; i++) assert.equal(await exchange(lb.port, '127.0.0.1', '127.0.0.2'), '');
  await waitFor(
    async () => (await view()).services[0]?.counters.refusedDenied === 4,
    5000,
    'refusals summed',
  );
  const metrics = (await lb.admin('/metrics')).text;
  assert.equal(sample(metrics, 'blitz_lb_refused_total{service="web",reason="denied"}'), 4);

  agentSays.line = 'drain';
  await waitFor(
    async () => (await view()).services[0]?.backends[0]?.state === 'draining',
    5000,
    'drained by the agent',
  );
  assert.equal((await view()).services[0]?.backends[0]?.agent?.reply, 'drain');
  agentSays.line = 'ready';
  await waitFor(
    async () => (await view()).services[0]?.backends[0]?.state === 'up',
    5000,
    'ready again',
  );

  const c = await openClient(lb.port);
  c.write('x');
  await once(c, 'data');
  backend.close(); // no new connections: probes fail; the open session stays until on_down ends it
  await waitFor(() => c.destroyed, 5000, 'the worker to end the session on a down backend');
  const after = (await lb.admin('/metrics')).text;
  assert.equal(
    sample(after, 'blitz_lb_sessions_ended_total{service="web",reason="backend-down"}'),
    1,
  );
});
