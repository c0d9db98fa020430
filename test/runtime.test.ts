import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { MIN_NODE, runtimeProblem } from '../src/runtime.js';
import { CLI } from './helpers/cli.js';

test('runtime: 22.12.0 and later run; anything before is one line naming the version needed and found', () => {
  for (const ok of ['v22.12.0', 'v22.23.3', 'v23.0.0', 'v24.21.0', 'v30.1.2'])
    assert.equal(runtimeProblem(ok), null, ok);
  for (const old of ['v22.11.9', 'v20.20.2', 'v18.0.0', 'v21.99.0', 'garbage']) {
    const p = runtimeProblem(old) ?? '';
    assert.match(p, /^blitz-lb needs Node\.js 22\.12\.0 or later; this is Node\.js /, old);
    assert.ok(p.includes(old.replace(/^v/, '')), p);
    assert.ok(!p.includes('\n'), 'one line');
  }
  // package.json's engines says the same.
  const pkg = JSON.parse(readFileSync(join(CLI, '..', '..', '..', 'package.json'), 'utf8'));
  assert.equal(pkg.engines.node, `>=${MIN_NODE[0]}.${MIN_NODE[1]}`);
});

/**
 * The real thing on an old Node: BLITZ_LB_OLD_NODE, or the machine's
 * /usr/bin/node when it is older than 22.12 (.ci/run's runtime smoke
 * installs Node 20 from the registry and checks it there too).
 */
const oldNode = [process.env.BLITZ_LB_OLD_NODE, '/usr/bin/node'].find(
  (n) =>
    n &&
    existsSync(n) &&
    runtimeProblem(spawnSync(n, ['--version'], { encoding: 'utf8' }).stdout.trim()) !== null,
);

test('runtime: blitz-lb on a Node older than 22.12 exits 1 with that one line, whatever the command', {
  skip: oldNode ? false : 'no Node older than 22.12 here (set BLITZ_LB_OLD_NODE)',
}, () => {
  const node = oldNode as string;
  const version = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
  for (const args of [['--version'], ['check', '--config', 'x.toml'], ['run', '-c', 'x.toml']]) {
    const r = spawnSync(node, [CLI, ...args], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 1, args.join(' '));
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, `${runtimeProblem(version)?.replace(process.execPath, node)}\n`);
  }
});
