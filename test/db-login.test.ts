import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { configView } from '../src/admin/config-view.js';
import type { Backend } from '../src/backend/backend.js';
import { effectiveConfig } from '../src/config/effective.js';
import { parseConfig } from '../src/config/schema.js';
import { toToml } from '../src/config/toml-write.js';
import { type DbServer, mariadb, pgBin, postgres } from './helpers/db-servers.js';
import { addr, scriptedServer, startLb, waitFor } from './helpers/servers.js';

/*
 * kind = "mysql" / "postgres" with a user: the probe logs in and out, so the
 * database sees a client that logged in and quit, not an aborted handshake.
 * Against the real servers (Debian's mariadb-server and postgresql).
 */

const run = promisify(execFile);

function need(t: Parameters<typeof mariadb>[0], what: string, pkg: string): void {
  assert.notEqual(process.env.CI, 'true', `${pkg} is installed by .ci/run`);
  t.skip(`${what} not installed (apt-get install ${pkg})`);
}

const health = { interval: '1h', timeout: '2s', fall: 1, rise: 1 };

/** One service per health table, each on the same backend, with no pool (only probes reach the server). */
function services(port: number, tables: Record<string, Record<string, unknown>>) {
  return {
    log: { level: 'silent' },
    services: Object.fromEntries(
      Object.entries(tables).map(([name, h]) => [
        name,
        {
          listen: '127.0.0.1:0',
          backends: [addr(port)],
          pool: { min_idle: 0 },
          health: { ...health, ...h },
        },
      ]),
    ),
  };
}

type Lb = Awaited<ReturnType<typeof startLb>>;

async function probe(lb: Lb, name: string): Promise<[boolean, string | undefined]> {
  const s = lb.service(name);
  await s.probeNow();
  const b = s.backends.all[0] as Backend;
  return [b.healthy, b.lastCheck?.detail];
}

async function mysqlStatus(my: DbServer, name: string): Promise<number> {
  const { stdout } = await run('mariadb', [
    '--socket',
    my.socket,
    '-uroot',
    '-N',
    '-B',
    '-e',
    `SHOW GLOBAL STATUS LIKE '${name}'`,
  ]);
  return Number(stdout.trim().split('\t')[1]);
}

const aborted = (log: string): number =>
  readFileSync(log, 'utf8')
    .split('\n')
    .filter((l) => /Aborted connection/.test(l)).length;

test('mysql login probe against MariaDB: logs in (no password, mysql_native_password) and quits with COM_QUIT; no Aborted_connects, no "Aborted connection" line; a wrong password fails with the server’s error', async (t) => {
  const my = await mariadb(t, ['--log-warnings=4']);
  if (!my) return need(t, 'mariadbd', 'mariadb-server');
  await run('mariadb', [
    '--socket',
    my.socket,
    '-uroot',
    '-e',
    "CREATE USER 'probe'@'127.0.0.1'; CREATE USER 'probepw'@'127.0.0.1' IDENTIFIED BY 's3cret'; CREATE DATABASE probedb; GRANT SELECT ON probedb.* TO 'probepw'@'127.0.0.1';",
  ]);
  // Counted from before the balancer starts: its first probe round runs at start.
  const abortedBefore = await mysqlStatus(my, 'Aborted_connects');
  const linesBefore = aborted(my.log);
  const lb = await startLb(
    t,
    services(my.port, {
      nopw: { kind: 'mysql', user: 'probe' },
      pw: { kind: 'mysql', user: 'probepw', password: 's3cret' },
      db: { kind: 'mysql', user: 'probepw', password: 's3cret', database: 'probedb' },
    }),
  );
  for (let i = 0; i < 5; i++) {
    assert.deepEqual(await probe(lb, 'nopw'), [true, 'mysql login ok']);
    assert.deepEqual(await probe(lb, 'pw'), [true, 'mysql login ok']);
    assert.deepEqual(await probe(lb, 'db'), [true, 'mysql login ok']);
  }
  assert.equal(await mysqlStatus(my, 'Aborted_connects'), abortedBefore, 'Aborted_connects');
  assert.equal(aborted(my.log), linesBefore, '"Aborted connection" lines in the error log');
  // The measurement sees what the greeting probe does: an aborted connect each.
  const other = await startLb(
    t,
    services(my.port, {
      greeting: { kind: 'mysql' },
      bad: { kind: 'mysql', user: 'probepw', password: 'wrong' },
    }),
  );
  assert.deepEqual(await probe(other, 'greeting'), [true, 'mysql ok']);
  await waitFor(
    async () => (await mysqlStatus(my, 'Aborted_connects')) > abortedBefore,
    5000,
    'the greeting probe counted as an aborted connect',
  );
  const [ok, detail] = await probe(other, 'bad');
  assert.equal(ok, false);
  assert.match(
    String(detail),
    /^mysql: login as "probepw": error 1045 Access denied for user 'probepw'@/,
  );
});

test('postgres login probe against PostgreSQL: trust, cleartext, md5 and SCRAM-SHA-256 log in and Terminate cleanly; wrong or missing passwords fail with the reason', async (t) => {
  const bin = pgBin();
  const pg = await postgres(t, {
    hba: [
      'host all pwuser 127.0.0.1/32 password',
      'host all md5user 127.0.0.1/32 md5',
      'host all scramuser 127.0.0.1/32 scram-sha-256',
    ],
    args: ['log_connections=on', 'log_disconnections=on'],
  });
  if (!pg || !bin) return need(t, 'PostgreSQL', 'postgresql');
  const psql = (sql: string) =>
    run(join(bin, 'psql'), ['-h', pg.socket, '-p', String(pg.port), '-U', 'postgres', '-qc', sql]);
  await psql("CREATE ROLE pwuser LOGIN PASSWORD 'pw1'");
  await psql("SET password_encryption = 'md5'; CREATE ROLE md5user LOGIN PASSWORD 'pw2'");
  await psql("CREATE ROLE scramuser LOGIN PASSWORD 'pw3'");
  const lb = await startLb(
    t,
    services(pg.port, {
      trust: { kind: 'postgres', user: 'postgres' },
      cleartext: { kind: 'postgres', user: 'pwuser', password: 'pw1', database: 'postgres' },
      md5: { kind: 'postgres', user: 'md5user', password: 'pw2', database: 'postgres' },
      scram: { kind: 'postgres', user: 'scramuser', password: 'pw3', database: 'postgres' },
      wrong: { kind: 'postgres', user: 'scramuser', password: 'nope', database: 'postgres' },
      missing: { kind: 'postgres', user: 'md5user', database: 'postgres' },
      nodb: { kind: 'postgres', user: 'postgres', database: 'nosuchdb' },
    }),
  );
  for (let i = 0; i < 3; i++)
    for (const name of ['trust', 'cleartext', 'md5', 'scram'])
      assert.deepEqual(await probe(lb, name), [true, 'postgres login ok'], name);
  const [wrongOk, wrong] = await probe(lb, 'wrong');
  assert.equal(wrongOk, false);
  assert.equal(wrong, 'postgres: FATAL 28P01 password authentication failed for user "scramuser"');
  assert.deepEqual(await probe(lb, 'missing'), [
    false,
    'postgres: the server asks "md5user" for a password (md5); set health.password',
  ]);
  assert.deepEqual(await probe(lb, 'nodb'), [
    false,
    'postgres: FATAL 3D000 database "nosuchdb" does not exist',
  ]);
  // Every good login ended with Terminate: the server logged the session's end, and no broken client.
  const log = readFileSync(pg.log, 'utf8');
  assert.equal((log.match(/disconnection: session time/g) ?? []).length >= 12, true, log);
  assert.doesNotMatch(log, /unexpected EOF|could not receive data|incomplete startup packet/);
});

/** A PostgreSQL that trusts everyone, enough of one to see how a client leaves. */
async function fakePostgres(t: Parameters<typeof scriptedServer>[0], goodbyes: string[]) {
  return scriptedServer(t, (s) => {
    let startup = true;
    s.on('data', (d: Buffer) => {
      if (startup) {
        startup = false;
        // AuthenticationOk, then ReadyForQuery (idle).
        s.write(Buffer.from('520000000800000000' + '5a0000000549', 'hex'));
      } else goodbyes.push(d.toString('hex'));
    });
    s.on('end', () => {
      goodbyes.push('FIN');
      s.end();
    });
  });
}

test('postgres login probe: after ReadyForQuery it sends Terminate, then a FIN', async (t) => {
  const goodbyes: string[] = [];
  const port = await fakePostgres(t, goodbyes);
  const lb = await startLb(t, services(port, { pg: { kind: 'postgres', user: 'u' } }));
  assert.deepEqual(await probe(lb, 'pg'), [true, 'postgres login ok']);
  await waitFor(() => goodbyes.length === 2, 2000, 'the goodbye');
  assert.deepEqual(goodbyes, ['5800000004', 'FIN']);
});

test('login probes: truncated, lying or foreign replies are failures with a reason, never a crash', async (t) => {
  const cases: [kind: string, reply: string, detail: RegExp][] = [
    // A greeting whose length says 4 bytes: protocol 10, then a version whose NUL lies past the end.
    ['mysql', '040000000a352e3500', /^malformed reply \(server version: no terminating NUL\)/],
    // Version, then the connection id cut short.
    ['mysql', '050000000a35000102', /^malformed reply \(connection id: needs 4 bytes, 2 left\)/],
    ['mysql', '010000000a', /^malformed reply \(server version/],
    ['mysql', '02000000ff15', /^malformed reply \(error code: needs 2 bytes, 1 left\)/],
    ['mysql', 'ffffff00', /^mysql: not a MySQL packet \(length 16777215\)/],
    ['postgres', '5200000008000000', /^timeout 300ms waiting for the login of "u"/],
    ['postgres', '520000000400', /^malformed reply \(authentication type: needs 4 bytes, 0 left\)/],
    ['postgres', '52000000080000000500', /^malformed reply \(md5 salt: needs 4 bytes, 0 left\)/],
    ['postgres', '52ffffffff', /^postgres: bad message length -1/],
    ['postgres', '4a00000001', /^postgres: not a PostgreSQL reply \(message type 0x4a\)/],
    ['postgres', '45000000065341', /^postgres: A$/],
  ];
  for (const [kind, reply, detail] of cases) {
    const port = await scriptedServer(t, (s) => {
      s.on('error', () => {});
      if (kind === 'mysql') s.write(Buffer.from(reply, 'hex'));
      else s.once('data', () => s.write(Buffer.from(reply, 'hex')));
      s.resume();
    });
    const lb = await startLb(
      t,
      services(port, { x: { kind, user: 'u', password: 'p', timeout: '300ms' } }),
    );
    const [ok, got] = await probe(lb, 'x');
    assert.equal(ok, false, `${kind} ${reply}`);
    assert.match(String(got), detail, `${kind} ${reply}`);
  }
});

test('a login probe’s password never leaves the process: /api/config and check --print show it redacted', () => {
  const config = parseConfig(
    {
      services: {
        db: {
          listen: '127.0.0.1:5433',
          backends: ['127.0.0.1:5432'],
          health: { kind: 'postgres', user: 'monitor', password: 'pa55word' },
        },
      },
    },
    { source: '<test>' },
  );
  const view = JSON.stringify(configView(config));
  assert.doesNotMatch(view, /pa55word/);
  assert.match(view, /"user":"monitor","password":"\(redacted\)"/);
  const printed = toToml(effectiveConfig(config));
  assert.doesNotMatch(printed, /pa55word/);
  assert.match(printed, /password = "<redacted>"/);
});
