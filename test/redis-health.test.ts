import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { promisify } from 'node:util';
import { waitForPort } from '../bench/lib/net.js';
import type { Backend } from '../src/backend/backend.js';
import { addr, openClient, refusedPort, startLb, waitFor } from './helpers/servers.js';

const run = promisify(execFile);

async function redisServer(t: TestContext, dir: string, extra: string[] = []): Promise<number> {
  const port = await refusedPort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  const p = spawn('redis-server', [...args, '--dir', dir, ...extra], { stdio: 'ignore' });
  t.after(() => p.kill('SIGKILL'));
  await waitForPort(port);
  return port;
}

const cli = (port: number, ...args: string[]) =>
  run('redis-cli', ['-p', String(port), ...args]).then((r) => r.stdout.trim());

/** Which redis-server a new session through the balancer reaches: its INFO server tcp_port. */
async function reached(lbPort: number): Promise<number> {
  const c = await openClient(lbPort);
  c.write('INFO server\r\n');
  let text = '';
  while (!/tcp_port:\d+\r\n/.test(text)) {
    const [d] = (await once(c, 'data')) as [Buffer];
    text += d.toString();
  }
  c.destroy();
  return Number(/tcp_port:(\d+)/.exec(text)?.[1]);
}

test('redis: PING on every server; with role = "master" only the primary is up, and a REPLICAOF failover moves new sessions to the new primary within one interval', async (t) => {
  const have = await run('redis-server', ['--version']).then(
    () => true,
    () => false,
  );
  if (!have) {
    assert.notEqual(process.env.CI, 'true', 'redis-server is installed by .ci/run');
    t.skip('redis-server not installed (apt-get install redis-server)');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'blitz-redis-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const a = await redisServer(t, dir, ['--dbfilename', 'a.rdb']);
  const b = await redisServer(t, dir, [
    '--dbfilename',
    'b.rdb',
    '--replicaof',
    '127.0.0.1',
    String(a),
  ]);
  const interval = 300;
  const health = { kind: 'redis', interval: `${interval}ms`, timeout: '500ms', fall: 1, rise: 1 };
  const lb = await startLb(t, {
    log: { level: 'silent' },
    services: {
      writes: {
        listen: '127.0.0.1:0',
        backends: [addr(a), addr(b)],
        pool: { min_idle: 0 },
        health: { ...health, role: 'master' },
      },
      reads: {
        listen: '127.0.0.1:0',
        backends: [addr(a), addr(b)],
        pool: { min_idle: 0 },
        health,
      },
    },
  });
  const writes = lb.service('writes');
  const reads = lb.service('reads');
  const [wa, wb] = [writes.backends.get(addr(a)), writes.backends.get(addr(b))] as Backend[];
  await waitFor(() => wb?.healthy === false, 3000, 'the replica down in "writes"');
  assert.equal(wb?.downReason, 'probe: redis: role:slave, not master');
  assert.equal(wa?.healthy, true);
  await reads.probeNow();
  assert.deepEqual(
    reads.backends.all.map((x) => [x.healthy, x.lastCheck?.detail]),
    [
      [true, 'redis ok'],
      [true, 'redis ok'],
    ],
  );
  const port = lb.address('writes').port;
  for (let i = 0; i < 4; i++) assert.equal(await reached(port), a);

  // Failover: b is promoted, a follows it.
  await cli(b, 'REPLICAOF', 'NO', 'ONE');
  await cli(a, 'REPLICAOF', '127.0.0.1', String(b));
  const t0 = Date.now();
  // Moved: b is the one candidate (until then, all_down = "try-all" may send a session anywhere).
  await waitFor(() => wb?.healthy === true && wa?.healthy === false, 5000, 'b up and a down');
  const took = Date.now() - t0;
  // One interval (jittered by up to 10 %), plus the probe's own round trip on a busy machine.
  assert.ok(took <= interval * 1.1 + 500, `new sessions moved after ${took} ms`);
  for (let i = 0; i < 4; i++) assert.equal(await reached(port), b);
  assert.equal(wa?.downReason, 'probe: redis: role:slave, not master');
});

test("redis: a server that wants a password is down, with the server's own words", async (t) => {
  const have = await run('redis-server', ['--version']).then(
    () => true,
    () => false,
  );
  if (!have) {
    t.skip('redis-server not installed (apt-get install redis-server)');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'blitz-redis-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const p = await redisServer(t, dir, ['--requirepass', 'sekret']);
  const lb = await startLb(t, {
    log: { level: 'silent' },
    services: {
      r: {
        listen: '127.0.0.1:0',
        backends: [addr(p)],
        pool: { min_idle: 0 },
        health: { kind: 'redis', interval: '1h', fall: 1 },
      },
    },
  });
  await lb.service('r').probeNow();
  const bk = lb.service('r').backends.all[0];
  assert.equal(bk?.healthy, false);
  assert.match(bk?.downReason ?? '', /^probe: redis: -NOAUTH/);
});
