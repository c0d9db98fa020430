import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { test } from 'node:test';
import {
  childExecArgv,
  SINGLE_THREADED_GC,
  singleThreadedGcWanted,
} from '../src/cluster/gc-threads.js';
import { runBalancer, twoWorkers } from './helpers/cluster.js';
import { addr, echoServer } from './helpers/servers.js';

test('gc threads: on by default at two cores or fewer; BLITZ_LB_SINGLE_THREADED_GC=0 / 1 decides otherwise', () => {
  for (const cores of [1, 2]) assert.equal(singleThreadedGcWanted({}, cores), true, `${cores}`);
  for (const cores of [3, 8, 64])
    assert.equal(singleThreadedGcWanted({}, cores), false, `${cores}`);
  for (const v of ['0', 'false'])
    assert.equal(singleThreadedGcWanted({ BLITZ_LB_SINGLE_THREADED_GC: v }, 1), false, v);
  for (const v of ['1', 'true'])
    assert.equal(singleThreadedGcWanted({ BLITZ_LB_SINGLE_THREADED_GC: v }, 64), true, v);
});

test("gc threads: a child gets this process's node flags, plus the flag unless the command line decided", () => {
  assert.deepEqual(childExecArgv(['--enable-source-maps'], true), [
    '--enable-source-maps',
    SINGLE_THREADED_GC,
  ]);
  assert.deepEqual(childExecArgv(['--enable-source-maps'], false), ['--enable-source-maps']);
  assert.deepEqual(childExecArgv([SINGLE_THREADED_GC], true), [SINGLE_THREADED_GC]);
  assert.deepEqual(childExecArgv(['--no-single-threaded-gc'], true), ['--no-single-threaded-gc']);
});

/** The node flags of a running process, from /proc (its command line up to the script). */
function nodeFlags(pid: number): string[] {
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0');
  return argv.slice(1).filter((a) => a.startsWith('--'));
}

interface Workers {
  workers: { pid: number | null }[];
}

for (const [setting, expected] of [
  ['1', true],
  ['0', false],
  [undefined, availableParallelism() <= 2],
] as const) {
  test(`gc threads: workers = 2 with BLITZ_LB_SINGLE_THREADED_GC ${setting ?? 'unset'} (${availableParallelism()} cores): each worker runs with ${SINGLE_THREADED_GC}: ${expected}`, async (t) => {
    const saved = process.env.BLITZ_LB_SINGLE_THREADED_GC;
    // The balancer is spawned with this process's environment.
    if (setting === undefined) delete process.env.BLITZ_LB_SINGLE_THREADED_GC;
    else process.env.BLITZ_LB_SINGLE_THREADED_GC = setting;
    t.after(() => {
      if (saved === undefined) delete process.env.BLITZ_LB_SINGLE_THREADED_GC;
      else process.env.BLITZ_LB_SINGLE_THREADED_GC = saved;
    });
    const be = await echoServer(t);
    const lb = await runBalancer(t, twoWorkers([addr(be)], ['health = { kind = "none" }']));
    const pids = ((await lb.admin('/api/services')).body as Workers).workers.map((w) => w.pid);
    assert.equal(pids.length, 2);
    for (const pid of pids) {
      assert.ok(pid !== null);
      assert.equal(nodeFlags(pid).includes(SINGLE_THREADED_GC), expected, nodeFlags(pid).join(' '));
    }
    // The primary's own command line is the operator's: untouched.
    assert.equal(nodeFlags(lb.child.proc.pid as number).includes(SINGLE_THREADED_GC), false);
  });
}
