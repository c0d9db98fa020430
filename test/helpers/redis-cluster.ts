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
  /**
   * Moves the (empty) slot of `key` to another master, behind the clients'
   * backs: their slot maps are stale, so their next command there gets a
   * MOVED. Resolves with the new owner's port.
   */
  moveSlotOf(key: string): Promise<number>;
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
  const cliAt = async (port: number, ...args: string[]) =>
    (await run('redis-cli', ['-p', String(port), ...args])).stdout.trim();
  return {
    ports,
    kill: (i) => stop(procs[i] as ChildProcess),
    moveSlotOf: async (key) => {
      const slot = await cliAt(ports[0] as number, 'CLUSTER', 'KEYSLOT', key);
      const ids = await Promise.all(ports.map((p) => cliAt(p, 'CLUSTER', 'MYID')));
      const owner = await ownerOf(ports, Number(slot));
      const to = ports.findIndex((p) => p !== owner);
      const target = ids[to] as string;
      // The new owner first, then the old one, then the rest (as redis-cli --cluster reshard does).
      const order = [to, ports.indexOf(owner), ...ports.keys()].filter(
        (i, k, all) => all.indexOf(i) === k,
      );
      for (const i of order)
        await cliAt(ports[i] as number, 'CLUSTER', 'SETSLOT', slot, 'NODE', target);
      return ports[to] as number;
    },
    cli: async (...args) =>
      (await run('redis-cli', ['-c', '-p', String(ports[0]), ...args])).stdout.trim(),
  };
}

/** The port of the master serving `slot` (from CLUSTER NODES: "id ip:port@bus flags ... 0-5460 ..."). */
async function ownerOf(ports: readonly number[], slot: number): Promise<number> {
  const { stdout } = await run('redis-cli', ['-p', String(ports[0]), 'CLUSTER', 'NODES']);
  for (const line of stdout.trim().split('\n')) {
    const f = line.split(' ');
    const port = Number(f[1]?.split('@')[0]?.split(':')[1]);
    for (const range of f.slice(8)) {
      const [lo, hi = lo] = range.split('-').map(Number);
      if (slot >= (lo as number) && slot <= (hi as number)) return port;
    }
  }
  throw new Error(`no owner for slot ${slot}`);
}

async function stop(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise((r) => p.once('exit', r));
  p.kill('SIGKILL');
  await gone;
}
