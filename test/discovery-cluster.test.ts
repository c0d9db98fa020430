import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runBalancer, sample } from './helpers/cluster.js';
import { answering, namedServer, session } from './helpers/discovery.js';
import { readBytes, waitFor } from './helpers/servers.js';

interface View {
  services: {
    discovery: { kind: string; backends: number; failures: number } | null;
    backends: { address: string; state: string; active: number }[];
  }[];
}

test('workers: discovery runs once, in the primary, and every worker serves the list it found', async (t) => {
  const d1 = await namedServer(t, '127.0.0.1');
  const d2 = await namedServer(t, '127.0.0.1');
  const dir = mkdtempSync(join(tmpdir(), 'blitz-lb-disc-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const list = join(dir, 'backends.json');
  writeFileSync(list, JSON.stringify([d1.address]));
  const lb = await runBalancer(
    t,
    (port, adminPort) => `
[process]
workers = 2
shutdown_timeout = "5s"
[admin]
listen = "127.0.0.1:${adminPort}"
[services.web]
listen = "127.0.0.1:${port}"
health = { kind = "tcp", interval = "200ms" }
queue_timeout = "200ms"
pool = { min_idle = 1 }
[services.web.discovery]
kind = "file"
path = "${list}"
interval = "1h"
`,
  );
  const view = async () => ((await lb.admin('/api/services')).body as View).services[0];
  const serving = async (want: string[]) => {
    const got = await answering(lb.port, 12).catch(() => new Set<string>());
    return [...got].sort().join(' ') === [...want].sort().join(' ');
  };
  await waitFor(() => serving([d1.address]), 10_000, 'd1 to serve in every worker');
  const v = await view();
  assert.equal(v?.discovery?.kind, 'file');
  assert.equal(v?.discovery?.backends, 1);
  // One watcher in the primary: the one lookup at start, not one per process.
  const metrics = (await lb.admin('/metrics')).text;
  assert.equal(sample(metrics, 'blitz_lb_discovery_backends{service="web",kind="file"}'), 1);

  const onD1 = await session(lb.port);
  assert.equal(onD1.backend, d1.address);
  writeFileSync(`${list}.tmp`, JSON.stringify([d2.address]));
  renameSync(`${list}.tmp`, list);
  // Every worker took the primary's new list: no session reaches d1, none fails.
  await waitFor(() => serving([d2.address]), 10_000, 'd2 alone to serve');
  onD1.client.write('kept');
  assert.equal(
    (await readBytes(onD1.client, 4)).toString(),
    'kept',
    'the open session on d1 goes on',
  );
  const during = await view();
  assert.deepEqual(
    during?.backends.map((b) => b.address),
    [d2.address],
    "the primary's view: d1 left the list",
  );
  onD1.client.end();
  await waitFor(() => d1.open.size === 0, 5000, 'the session on d1 to end');
  assert.deepEqual([...(await answering(lb.port, 6))], [d2.address]);
});
