import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { CLI, tempConfig } from './helpers/cli.js';

const EXAMPLES = join(CLI, '..', '..', '..', 'examples');
const hasAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;

function unit(name: string): string {
  return readFileSync(join(EXAMPLES, name), 'utf8');
}

test('examples/blitz-lb.service says what the lifecycle needs', () => {
  const s = unit('blitz-lb.service');
  for (const line of [
    /^ExecStartPre=\S+ check --config /m,
    /^ExecStart=\S+\/blitz-lb run --config /m,
    /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m,
    /^Restart=on-failure$/m,
    /^RestartPreventExitStatus=2$/m,
    /^AmbientCapabilities=CAP_NET_BIND_SERVICE$/m,
    /^NoNewPrivileges=yes$/m,
    /^ProtectSystem=strict$/m,
    /^PIDFile=/m,
    /^Type=notify$/m,
    /^NotifyAccess=all$/m,
  ])
    assert.match(s, line);
  assert.doesNotMatch(
    s,
    /^Exec\S*=.*\bnp[mx]\b/m,
    'the binary by its path, not through npm or npx',
  );
  // TimeoutStopSec above the default shutdown_timeout (30s).
  const stop = /^TimeoutStopSec=(\d+)s$/m.exec(s);
  assert.ok(stop && Number(stop[1]) > 30, 'TimeoutStopSec above shutdown_timeout');
  assert.match(unit('blitz-lb.socket'), /^FileDescriptorName=web$/m);
});

test('systemd-analyze verify accepts the example units', {
  skip: !hasAnalyze && 'systemd-analyze is not installed',
}, (t) => {
  // The binary at its install path is not on this machine: the units are checked against the built CLI.
  const service = unit('blitz-lb.service').replaceAll(
    '/usr/local/bin/blitz-lb',
    `${process.execPath} ${CLI}`,
  );
  const dir = join(tempConfig(t, service, 'blitz-lb.service'), '..');
  writeFileSync(join(dir, 'blitz-lb.socket'), unit('blitz-lb.socket'));
  const r = spawnSync('systemd-analyze', ['verify', 'blitz-lb.socket', 'blitz-lb.service'], {
    cwd: dir,
    encoding: 'utf8',
  });
  // verify exits 0 on unknown keys, with a warning: any word about our units is a failure.
  const ours = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.includes('blitz-lb'));
  assert.deepEqual(ours, []);
  assert.equal(r.status, 0);
});
