import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import { waitForPort } from '../../bench/lib/net.js';
import { refusedPort, waitFor } from './servers.js';

const run = promisify(execFile);

export interface RedisCluster {
  /** Each master's client port. */
  readonly ports: readonly number[];
  /** SIGKILL one node: its slots have no master (no replicas), so the cluster says CLUSTERDOWN. */
  kill(i: number): Promise<void>;
  /** redis-cli -c against the cluster (follows MOVED). */
  cli(...args: string[]): Promise<string>;
}

/**
 * A throwaway Redis Cluster of three masters on loopback (Debian's redis-server
 * and redis-cli; .ci/run installs them): each node on a free port with its bus
 * on another (cluster-port), joined by `redis-cli --cluster create`, ready
 * when every node says cluster_state:ok. Killed after the test.
 */
export async function startRedisCluster(t: TestContext, n = 3): Promise<RedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'blitz-lb-rcluster-'));
  const procs: ChildProcess[] = [];
  const ports: number[] = [];
  t.after(async () => {
    await Promise.all(procs.map((p) => stop(p)));
    rmSync(dir, { recursive: true, force: true });
  });
  for (let i = 0; i < n; i++) {
    const port = await refusedPort();
    const bus = await refusedPort();
    ports.push(port);
    procs.push(
      spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--cluster-port',
          String(bus),
          '--bind',
          '127.0.0.1',
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(dir, `nodes-${port}.conf`),
          '--cluster-node-timeout',
          '1000',
          '--dir',
          dir,
          '--save',
          '',
          '--appendonly',
          'no',
        ],
        { stdio: 'ignore' },
      ),
    );
  }
  await Promise.all(ports.map((p) => waitForPort(p)));
  await run('redis-cli', [
    '--cluster',
    'create',
    ...ports.map((p) => `127.0.0.1:${p}`),
    '--cluster-replicas',
    '0',
    '--cluster-yes',
  ]);
  const info = async (port: number) =>
    (await run('redis-cli', ['-p', String(port), 'cluster', 'info'])).stdout;
  await waitFor(
    async () => (await Promise.all(ports.map(info))).every((s) => s.includes('cluster_state:ok')),
    15_000,
    'cluster_state:ok on every node',
  );
  return {
    ports,
    kill: (i) => stop(procs[i] as ChildProcess),
    cli: async (...args) =>
      (await run('redis-cli', ['-c', '-p', String(ports[0]), ...args])).stdout.trim(),
  };
}

async function stop(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise((r) => p.once('exit', r));
  p.kill('SIGKILL');
  await gone;
}
