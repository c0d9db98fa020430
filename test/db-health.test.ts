import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import type { Backend } from '../src/backend/backend.js';
import { mariadb, postgres } from './helpers/db-servers.js';
import { addr, bannerServer, openClient, startLb, waitFor } from './helpers/servers.js';

/*
 * kind = "mysql" and kind = "postgres" against the real servers (Debian's
 * mariadb-server and postgresql, installed by .ci/run), each started once:
 * the right server is up; the other protocol, on the same probe, is down.
 */

function need(t: Parameters<typeof mariadb>[0], what: string, pkg: string): void {
  assert.notEqual(process.env.CI, 'true', `${pkg} is installed by .ci/run`);
  t.skip(`${what} not installed (apt-get install ${pkg})`);
}

test('mysql and postgres probes against MariaDB and PostgreSQL: each server passes its own probe and fails the other', async (t) => {
  const [my, pg] = await Promise.all([mariadb(t), postgres(t)]);
  if (!my) return need(t, 'mariadbd', 'mariadb-server');
  if (!pg) return need(t, 'PostgreSQL', 'postgresql');
  const smtp = await bannerServer(t, '220 mail ESMTP\r\n');
  const health = { interval: '1h', timeout: '1s', fall: 1, rise: 1 };
  const lb = await startLb(t, {
    log: { level: 'silent' },
    services: {
      mysql: {
        listen: '127.0.0.1:0',
        backends: [addr(my.port), addr(pg.port), addr(smtp)],
        pool: { min_idle: 0 },
        health: { ...health, kind: 'mysql' },
      },
      pg: {
        listen: '127.0.0.1:0',
        backends: [addr(pg.port), addr(my.port)],
        pool: { min_idle: 0 },
        health: { ...health, kind: 'postgres' },
      },
    },
  });
  const state = (svc: string) => {
    const s = lb.service(svc);
    return s.backends.all.map((b: Backend) => [b.healthy, b.lastCheck?.detail]);
  };
  await Promise.all([lb.service('mysql').probeNow(), lb.service('pg').probeNow()]);
  const [mysqlOk, pgOnMysql, smtpOnMysql] = state('mysql');
  assert.deepEqual(mysqlOk, [true, 'mysql ok']);
  // PostgreSQL says nothing until spoken to: the greeting never comes.
  assert.deepEqual(pgOnMysql, [false, 'timeout 1000ms waiting for the server greeting']);
  assert.equal(smtpOnMysql?.[0], false);
  assert.match(String(smtpOnMysql?.[1]), /^mysql: not a protocol-10 handshake/);
  const [pgOk, mysqlOnPg] = state('pg');
  assert.deepEqual(pgOk, [true, 'postgres ok']);
  assert.equal(mysqlOnPg?.[0], false);
  assert.match(String(mysqlOnPg?.[1]), /^postgres: unexpected reply 0x[0-9a-f]+ to SSLRequest/);

  // Sessions reach the healthy server only: the MariaDB greeting through the balancer.
  const c = await openClient(lb.address('mysql').port);
  const [greeting] = (await once(c, 'data')) as [Buffer];
  assert.equal(greeting[4], 0x0a);
  assert.match(greeting.toString('latin1'), /MariaDB/);
  c.destroy();

  // A killed server is down at the next probe, with the connect error.
  pg.kill();
  await waitFor(
    async () => {
      await lb.service('pg').probeNow();
      return lb.service('pg').backends.all[0]?.healthy === false;
    },
    5000,
    'postgres down',
  );
  assert.match(
    String(lb.service('pg').backends.all[0]?.downReason),
    /^probe: (ECONNREFUSED|ECONNRESET|closed)/,
  );
});
