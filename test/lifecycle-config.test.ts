import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseToml } from '../src/config/load.js';
import { parseConfig } from '../src/config/schema.js';
import { PassedSockets } from '../src/lifecycle/passed-sockets.js';
import { runCli, tempConfig } from './helpers/cli.js';

const SVC = '[services.web]\nbackends = ["127.0.0.1:9001"]\n';

function parse(text: string) {
  return parseConfig(parseToml(text, 'c.toml'), { source: 'c.toml', baseDir: '/etc/blitz' });
}

test('[process] pid_file, drain_delay and upgrade_timeout: defaults, values and errors', () => {
  const d = parse(`${SVC}listen = "127.0.0.1:8080"`).process;
  assert.deepEqual(
    { pidFile: d.pidFile, drainDelayMs: d.drainDelayMs, upgradeTimeoutMs: d.upgradeTimeoutMs },
    { pidFile: null, drainDelayMs: 0, upgradeTimeoutMs: 30_000 },
  );
  const p = parse(
    `[process]\npid_file = "run/lb.pid"\ndrain_delay = "5s"\nupgrade_timeout = "1m"\n${SVC}listen = "127.0.0.1:8080"`,
  ).process;
  assert.deepEqual(
    { pidFile: p.pidFile, drainDelayMs: p.drainDelayMs, upgradeTimeoutMs: p.upgradeTimeoutMs },
    { pidFile: '/etc/blitz/run/lb.pid', drainDelayMs: 5000, upgradeTimeoutMs: 60_000 },
  );
  const bad = `[process]\npid_file = 3\ndrain_delay = "soon"\nupgrade_timeout = 0\n${SVC}listen = "127.0.0.1:8080"`;
  assert.throws(
    () => parse(bad),
    (err: Error) =>
      /c\.toml: process\.pid_file: expected a file name/.test(err.message) &&
      /process\.drain_delay: /.test(err.message) &&
      /process\.upgrade_timeout: must be 1ms-/.test(err.message),
  );
  assert.throws(
    () => parse(`[process]\ndrain_dealy = "1s"\n${SVC}listen = "127.0.0.1:8080"`),
    /did you mean "drain_delay"/,
  );
});

test('listen = "systemd:NAME" and "fd:N": parsed as passed sockets; bad names, stdio descriptors and a name used twice are errors', () => {
  const c = parse(
    `${SVC}listen = "systemd:web"\n[services.b]\nlisten = "fd:4"\nbackends = ["127.0.0.1:9002"]`,
  );
  assert.deepEqual(c.services[0]?.listen.passed, { kind: 'systemd', name: 'web' });
  assert.deepEqual(c.services[1]?.listen.passed, { kind: 'fd', fd: 4 });
  assert.throws(
    () => parse(`${SVC}listen = "systemd:"`),
    /services\.web\.listen: expected "systemd:NAME"/,
  );
  assert.throws(() => parse(`${SVC}listen = "systemd:a b"`), /expected "systemd:NAME"/);
  assert.throws(() => parse(`${SVC}listen = "fd:2"`), /expected "fd:N" with N 3 or more/);
  assert.throws(() => parse(`${SVC}listen = "fd:x"`), /expected "fd:N"/);
  assert.throws(
    () =>
      parse(
        `${SVC}listen = "systemd:web"\n[services.b]\nlisten = "systemd:web"\nbackends = ["127.0.0.1:9002"]`,
      ),
    /services\.b\.listen: systemd:web is already the listen address of services\.web/,
  );
});

test('passed sockets: systemd names by LISTEN_FDNAMES only for LISTEN_PID, upgrade hand-over first, each taken once, variables cleared', () => {
  const env: NodeJS.ProcessEnv = {
    LISTEN_PID: '42',
    LISTEN_FDS: '3',
    LISTEN_FDNAMES: 'web:admin:web',
    BLITZ_LB_UPGRADE: JSON.stringify({ report: 4, sockets: { '127.0.0.1:80': 7 } }),
  };
  const s = PassedSockets.fromEnv(env, 42);
  assert.equal(env.LISTEN_FDS, undefined, 'LISTEN_* are not passed on to children');
  const web = {
    host: '',
    port: 0,
    address: 'systemd:web',
    passed: { kind: 'systemd', name: 'web' },
  } as const;
  assert.equal(s.take('systemd:web', web), 3);
  assert.equal(s.take('systemd:web', web), 5, 'a name passed twice gives its second socket');
  assert.throws(
    () => s.take('systemd:web', web),
    /systemd passed no socket named "web" \(it passed: web, admin\)/,
  );
  assert.equal(s.take('127.0.0.1:80'), 7);
  assert.equal(s.take('127.0.0.1:80'), null, 'once taken, the address is bound afresh');
  const fd = { host: '', port: 0, address: 'fd:9', passed: { kind: 'fd', fd: 9 } } as const;
  assert.equal(s.take('fd:9', fd), 9);
  assert.throws(() => s.take('fd:9', fd), /descriptor 9 is in use already/);

  const other = PassedSockets.fromEnv({ LISTEN_PID: '1', LISTEN_FDS: '1' }, 42);
  assert.throws(() => other.take('systemd:web', web), /no LISTEN_FDS for this process/);
});

test('check shows the [process] lifecycle keys', (t) => {
  const file = tempConfig(
    t,
    `[process]\npid_file = "/run/lb.pid"\ndrain_delay = "5s"\n${SVC}listen = "systemd:web"`,
  );
  const r = runCli(['check', '--config', file]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /service web: listen systemd:web/);
  assert.match(
    r.stdout,
    /process: workers 1, pid_file \/run\/lb\.pid, drain_delay 5s, upgrade_timeout 30s/,
  );
});
