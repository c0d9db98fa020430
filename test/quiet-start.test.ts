import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ManualClock } from './helpers/backends.js';
import { CLI, tempConfig } from './helpers/cli.js';
import { logLines } from './helpers/log-lines.js';
import {
  addr,
  httpGet,
  refusedPort,
  scriptedServer,
  startLb,
  svc,
  waitFor,
} from './helpers/servers.js';

const SHIPPED = join(CLI, '..', '..', '..', 'config.toml');

test('the shipped config.toml runs the demo without a single warning under the smallest open-file limit a default machine gives (hard 4096)', async (t) => {
  const [lb, admin, ...be] = await Promise.all([1, 2, 3, 4, 5].map(() => refusedPort()));
  // The shipped file as it is, on free ports: 8080, 9900 and 9001-9003 may be taken here.
  const text = readFileSync(SHIPPED, 'utf8')
    .replaceAll('127.0.0.1:8080', `127.0.0.1:${lb}`)
    .replaceAll('127.0.0.1:9900', `127.0.0.1:${admin}`)
    .replaceAll('127.0.0.1:9001', `127.0.0.1:${be[0]}`)
    .replaceAll('127.0.0.1:9002', `127.0.0.1:${be[1]}`)
    .replaceAll('127.0.0.1:9003', `127.0.0.1:${be[2]}`);
  assert.ok(!/:(8080|9900|900[123])"/.test(text), 'every port moved');
  const file = tempConfig(t, text);
  const child = spawn(
    'bash',
    // Node raises its soft limit to the hard one at start, so the hard limit is the one that counts.
    ['-c', 'ulimit -n 4096 && exec "$0" "$@"', process.execPath, CLI, 'demo', '--config', file],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  t.after(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  await waitFor(() => out.includes('"blitz-lb started"'), 15_000, 'the demo to start');
  // A first round of health probes and pool refills: where warnings would come from.
  for (let i = 0; i < 6; i++) assert.match(await httpGet(lb as number), /hello from backend-\d/);
  child.kill('SIGINT');
  assert.equal(await exited, 0);
  const loud = out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level: number; msg: string })
    .filter((l) => l.level >= 40);
  assert.deepEqual(loud, [], 'no warning');
});

test("the warm pool's early-close warning says what to do the first time, for each backend, and only then", async (t) => {
  // A backend that drops every connection nobody speaks on at once, as a greeting server that times out might.
  const port = await scriptedServer(t, (s) => s.destroy());
  const clock = new ManualClock();
  const { logger, lines } = logLines('warn');
  await startLb(t, svc([addr(port)], { pool: { min_idle: 1, max_idle: 1 } }), { logger, clock });
  const early = () => lines.filter((l) => /closes idle connections/.test(String(l.msg)));
  await waitFor(() => early().length === 1, 5000, 'the first warning');
  assert.match(
    String(early()[0]?.msg),
    /To stop this: a backend that speaks first .* wants \[pool\] min_idle = 0 for its service; any other backend wants \[pool\] idle_ttl below ~\d+ ms/,
  );
  // Past the one-a-minute throttle: the next warning says only what happened.
  clock.advance(61_000);
  await waitFor(() => early().length === 2, 10_000, 'the second warning');
  assert.doesNotMatch(String(early()[1]?.msg), /To stop this|min_idle/);
});
