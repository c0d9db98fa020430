import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { waitForPort } from '../bench/lib/net.js';
import { addr, refusedPort, startLb, waitFor } from './helpers/servers.js';

/*
 * The warm pool in front of real servers that nobody here wrote: what a
 * pre-opened socket looks like to them must never change what a client sees.
 */

const run = promisify(execFile);

async function have(cmd: string, args: string[]): Promise<boolean> {
  return run(cmd, args).then(
    () => true,
    () => false,
  );
}

/**
 * iperf3's server serves one test at a time and reads the first socket it
 * accepts: through a pool handed out newest first, that was an idle pooled
 * socket no client owned, and `iperf3 -c` hung. The default config (no
 * [pool] table: min_idle 2), both directions.
 */
test('pool (defaults): iperf3 through the balancer completes, both directions, twice each', async (t) => {
  if (!(await have('iperf3', ['--version']))) {
    assert.notEqual(process.env.CI, 'true', 'iperf3 is installed by .ci/run');
    t.skip('iperf3 not installed (apt-get install iperf3)');
    return;
  }
  const port = await refusedPort();
  const server = spawn('iperf3', ['-s', '-B', '127.0.0.1', '-p', String(port)], {
    stdio: 'ignore',
  });
  t.after(() => server.kill('SIGKILL'));
  await waitForPort(port);
  const lb = await startLb(t, {
    log: { level: 'silent' },
    services: { iperf: { listen: '127.0.0.1:0', backends: [addr(port)] } },
  });
  const s = lb.service('iperf');
  assert.equal(s.cfg.pool.minIdle, 2, 'the default pool');
  await waitFor(() => s.pool.idleCount === 2, 3000, 'the pool to fill');
  const lbPort = String(lb.address('iperf').port);
  for (const reverse of [false, true, false, true]) {
    // 1 s of traffic; the deadline turns a hang into a failure instead of a stuck suite.
    const args = ['-c', '127.0.0.1', '-p', lbPort, '-t', '1', '-J', ...(reverse ? ['-R'] : [])];
    const { stdout } = await run('iperf3', args, { timeout: 10_000 });
    const r = JSON.parse(stdout) as {
      error?: string;
      end: { sum_received: { bytes: number } };
    };
    assert.equal(r.error, undefined, `iperf3 ${args.join(' ')}`);
    assert.ok(r.end.sum_received.bytes > 0, `${reverse ? '-R' : ''}: bytes received`);
  }
  // The first control connection came warm (the case that hung). While a test runs, iperf3
  // closes every other connection it accepts, so later ones mostly dial fresh (young deaths).
  assert.ok(s.pool.counters.hits >= 1, `pool: ${JSON.stringify(s.pool.counters)}`);
});
