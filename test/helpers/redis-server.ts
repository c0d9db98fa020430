import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { waitForPort } from '../../bench/lib/net.js';
import { refusedPort } from './servers.js';

const haveRedis = spawnSync('redis-server', ['--version']).status === 0;

/**
 * True when redis-server is here; else the test is skipped, except in CI, which installs
 * Debian's redis-server (.ci/run): there a missing one fails the test.
 */
export function needRedis(t: TestContext): boolean {
  if (haveRedis) return true;
  assert.notEqual(process.env.CI, 'true', 'redis-server is installed by .ci/run');
  t.skip('redis-server not installed (apt-get install redis-server)');
  return false;
}

export interface RedisServer {
  port: number;
  /** SIGKILL: gone at once, as a crashed or partitioned Redis. */
  kill(): Promise<void>;
  /** A fresh, empty redis-server on the same port (a failover to an empty replica, at worst). */
  restart(): Promise<void>;
  /** SIGSTOP / SIGCONT: connected but answering nothing, as a Redis stuck or partitioned mid-stream. */
  pause(): void;
  resume(): void;
}

/** A throwaway redis-server (Debian's package; .ci/run installs it) on a free loopback port, in a temp dir, killed after the test. */
/** `args`: more redis-server options (e.g. --requirepass). */
export async function startRedis(t: TestContext, args: string[] = []): Promise<RedisServer> {
  const port = await refusedPort();
  const dir = mkdtempSync(join(tmpdir(), 'blitz-lb-redis-'));
  let proc: ChildProcess | null = null;
  const start = async (): Promise<void> => {
    proc = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--save',
        '',
        '--appendonly',
        'no',
        ...args,
      ],
      { stdio: 'ignore' },
    );
    await waitForPort(port);
  };
  const kill = async (): Promise<void> => {
    const p = proc as ChildProcess | null;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await gone;
  };
  t.after(async () => {
    (proc as ChildProcess | null)?.kill('SIGCONT');
    await kill();
    rmSync(dir, { recursive: true, force: true });
  });
  await start();
  return {
    port,
    kill,
    restart: start,
    pause: () => (proc as ChildProcess | null)?.kill('SIGSTOP'),
    resume: () => (proc as ChildProcess | null)?.kill('SIGCONT'),
  };
}
