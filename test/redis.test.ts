import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { waitForPort } from '../bench/lib/net.js';
import { runBalancer, twoWorkers } from './helpers/cluster.js';
import { refusedPort } from './helpers/servers.js';

const run = promisify(execFile);
const N = 20_000;

/** redis-benchmark's --csv output: test name → requests per second. */
async function benchmark(port: number, tests: string): Promise<Map<string, number>> {
  const { stdout } = await run(
    'redis-benchmark',
    [
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '-n',
      String(N),
      '-c',
      '20',
      '-P',
      '16',
      '-t',
      tests,
      '--csv',
    ],
    { timeout: 60_000 },
  );
  const out = new Map<string, number>();
  for (const line of stdout.trim().split('\n').slice(1)) {
    const [name, rps] = line.split(',').map((f) => f.replace(/"/g, ''));
    out.set(name as string, Number(rps));
  }
  return out;
}

test('pass-through (workers = 2): redis-benchmark, pipelined 16 deep, against a real redis-server; every command lands exactly once', async (t) => {
  const have = await run('redis-benchmark', ['--version']).then(
    () => true,
    () => false,
  );
  if (!have) {
    // CI installs Debian's redis-server (.ci/run); elsewhere, say so instead of failing.
    assert.notEqual(process.env.CI, 'true', 'redis-server is installed by .ci/run');
    t.skip('redis-benchmark not installed (apt-get install redis-server)');
    return;
  }
  const redisPort = await refusedPort();
  const redis = spawn(
    'redis-server',
    ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  t.after(() => redis.kill('SIGKILL'));
  await waitForPort(redisPort);
  const lb = await runBalancer(t, twoWorkers([`127.0.0.1:${redisPort}`], [], 'redis'));
  const via = await benchmark(lb.port, 'set,get,incr,lpush');
  assert.deepEqual([...via.keys()], ['SET', 'GET', 'INCR', 'LPUSH']);
  for (const [name, rps] of via) assert.ok(rps > 0, `${name}: ${rps} requests/s`);
  // Every INCR went through once and only once: none lost, none doubled, in pipelines of 16.
  const { stdout: count } = await run('redis-cli', [
    '-p',
    String(redisPort),
    'GET',
    'counter:__rand_int__',
  ]);
  assert.equal(count.trim(), String(N));
  const { stdout: len } = await run('redis-cli', ['-p', String(redisPort), 'LLEN', 'mylist']);
  assert.equal(len.trim(), String(N));
  const view = (await lb.admin('/api/services')).body as {
    services: { counters: { accepted: number } }[];
  };
  assert.ok((view.services[0]?.counters.accepted ?? 0) >= 80, '20 clients for each of 4 tests');
  // Figures for the record (performance is judged by the bench, not asserted here).
  const direct = await benchmark(redisPort, 'set,get');
  for (const name of ['SET', 'GET'])
    t.diagnostic(
      `${name}: ${via.get(name)} req/s through the balancer, ${direct.get(name)} direct (${((via.get(name) ?? 0) / (direct.get(name) ?? 1)).toFixed(2)}x)`,
    );
});
