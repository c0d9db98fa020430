import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/**
 * Starts `n` bench HTTP backends in their own process (on `fixedPorts` when
 * given, so a soak can restart one on the same port); resolves with their ports.
 * With `tls` (PEM file paths) they serve HTTPS.
 */
export async function startBackends(
  n: number,
  fixedPorts: number[] = [],
  tls?: { cert: string; key: string },
): Promise<{ proc: ChildProcess; ports: number[] }> {
  const proc = fork(join(here, '..', 'backend-server.js'), [String(n), ...fixedPorts.map(String)], {
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    env: tls ? { ...process.env, BENCH_TLS_CERT: tls.cert, BENCH_TLS_KEY: tls.key } : process.env,
  });
  const [line] = (await once(proc.stdout as NodeJS.ReadableStream, 'data')) as [Buffer];
  return { proc, ports: (JSON.parse(line.toString()) as { ports: number[] }).ports };
}

export interface LbChild {
  proc: ChildProcess;
  port: number;
  stats(): Promise<LbStats>;
  stop(): Promise<void>;
}

export interface HistogramSnapshot {
  count: number;
  sum: number;
  bounds: number[];
  counts: number[];
}

export interface LbStats {
  counters: Record<string, number>;
  backends: { address: string; active: number; up: boolean; aborted: number }[];
  rss: number;
  fds: number;
  pool: { hits: number; misses: number; refills: number };
  hit: HistogramSnapshot;
  miss: HistogramSnapshot;
}

/** Starts blitz-lb in a child process with `config` (one service named "bench"). */
export async function startLb(config: Record<string, unknown>): Promise<LbChild> {
  const proc = fork(join(here, '..', 'lb-child.js'), [JSON.stringify(config)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const [msg] = (await once(proc, 'message')) as [{ type: string; port: number }];
  return {
    proc,
    port: msg.port,
    stats: async () => {
      proc.send({ type: 'stats' });
      for (;;) {
        const [m] = (await once(proc, 'message')) as [{ type: string } & LbStats];
        if (m.type === 'stats') return m;
      }
    },
    stop: async () => {
      const exited = once(proc, 'exit');
      proc.disconnect();
      await exited;
    },
  };
}

/** The q-quantile of a histogram snapshot, as its bucket's upper bound in seconds. */
export function snapshotQuantile(h: HistogramSnapshot, q: number): number {
  if (h.count === 0) return Number.NaN;
  let seen = 0;
  for (let i = 0; i < h.counts.length; i++) {
    seen += h.counts[i] as number;
    if (seen >= q * h.count)
      return i < h.bounds.length ? (h.bounds[i] as number) : Number.POSITIVE_INFINITY;
  }
  return Number.POSITIVE_INFINITY;
}
