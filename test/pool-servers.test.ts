import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { waitForPort } from '../bench/lib/net.js';
import type { Backend } from '../src/backend/backend.js';
import { type DbServer, mariadb } from './helpers/db-servers.js';
import { captured } from './helpers/discovery.js';
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

/** Runs SQL as MariaDB's root over its Unix socket (root@localhost authenticates by unix_socket). */
async function sqlAsRoot(my: DbServer, sql: string): Promise<string> {
  const { stdout } = await run('mariadb', ['--socket', my.socket, '-uroot', '-N', '-B', '-e', sql]);
  return stdout.trim();
}

/**
 * MariaDB closes a connection that has not logged in within connect_timeout:
 * every pooled socket, every connect_timeout. With 2 s and a client now and
 * then (the real `mariadb` client, each a login and a query), sockets of
 * every age are handed out; not one client may see a reset.
 */
test('pool (defaults): MariaDB with connect_timeout = 2 under a trickle of real clients: the pool learns the timeout, 0 failed clients', async (t) => {
  const my = await mariadb(t, ['--connect-timeout=2']);
  if (!my) {
    assert.notEqual(process.env.CI, 'true', 'mariadb-server is installed by .ci/run');
    t.skip('mariadbd not installed (apt-get install mariadb-server)');
    return;
  }
  await sqlAsRoot(my, "CREATE USER 'app'@'127.0.0.1' IDENTIFIED BY 'pw'");
  const { logger, lines } = captured('warn');
  const lb = await startLb(
    t,
    {
      log: { level: 'warn' },
      services: { db: { listen: '127.0.0.1:0', backends: [addr(my.port)] } },
    },
    { logger },
  );
  const s = lb.service('db');
  const b = s.backends.all[0] as Backend;
  const lbPort = String(lb.address('db').port);
  const failures: string[] = [];
  let clients = 0;
  // 14 s in the suite; the minute (a soak):
  // BLITZ_POOL_TRICKLE_MS=60000 flock /tmp/blitz-load.lock node --test dist/test/pool-servers.test.js
  const until = Date.now() + Number(process.env.BLITZ_POOL_TRICKLE_MS ?? 14_000);
  while (Date.now() < until) {
    clients++;
    await run(
      'mariadb',
      ['-h127.0.0.1', `-P${lbPort}`, '-uapp', '-ppw', '-N', '-B', '-e', 'SELECT 1'],
      { timeout: 10_000 },
    ).then(
      ({ stdout }) => stdout.trim() === '1' || failures.push(`stdout ${stdout}`),
      (err: Error & { stderr?: string }) => failures.push(err.stderr?.trim() ?? err.message),
    );
    // Clients at uneven gaps reach pooled sockets of every age (the behaviour under test).
    await new Promise((r) => setTimeout(r, 400 + ((clients * 397) % 1200)));
  }
  t.diagnostic(
    `${clients} clients, ${failures.length} failed; pool ${JSON.stringify(s.pool.counters)}; learned ${s.pool.lifetimeFor(b)} ms`,
  );
  assert.deepEqual(failures, [], `${failures.length} of ${clients} clients failed`);
  const learned = s.pool.lifetimeFor(b);
  assert.ok(
    learned >= 2000 && learned < 2500,
    `learned lifetime ${learned} ms; ${JSON.stringify(s.pool.counters)}`,
  );
  assert.ok(s.pool.counters.hits > clients / 2, `hits ${s.pool.counters.hits} of ${clients}`);
  assert.ok(s.pool.counters.evictions.retired > 0, 'sockets retired before the timeout');
  assert.equal(
    lines.filter((l) => /closes idle connections after ~2\d{3} ms/.test(l.msg)).length,
    1,
  );
});
