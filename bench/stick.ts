/**
 * issue 26: what a stick table costs on the accept path.
 *
 * 1. The pick alone: least-connections plain, behind a stick table (every
 *    pick a hit), and behind a shared one (a hit that also checks whether
 *    Redis's copy needs renewing): picks/s and GCs (a hit must allocate nothing).
 * 2. Whole connections through a balancer in this process (connect, the
 *    backend's banner, close; one at a time, from 50 loopback sources):
 *    stick off, on (local hits), on and shared through a real redis-server
 *    (hits), and the first connection of each source through a second
 *    instance, which finds the entry in Redis (one GET within cluster.wait).
 *
 *   flock /tmp/blitz-load.lock npm run bench:stick     (node dist/bench/stick.js [--picks N] [--conns N])
 */
import { spawn } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { PerformanceObserver } from 'node:perf_hooks';
import { BackendSet } from '../src/backend/backend-set.js';
import { createStrategy } from '../src/balancer/index.js';
import type { Strategy } from '../src/balancer/strategy.js';
import { parseConfig } from '../src/config/schema.js';
import { LoadBalancer } from '../src/load-balancer.js';
import { StickTable } from '../src/shared/stick-table.js';
import { StickyStrategy } from '../src/shared/sticky-strategy.js';
import { waitForPort } from './lib/net.js';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const picks = arg('--picks', 5_000_000);
const conns = arg('--conns', 2000);

let collections = 0;
const obs = new PerformanceObserver((list) => {
  collections += list.getEntries().length;
});
obs.observe({ entryTypes: ['gc'] });
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

const set = new BackendSet(
  Array.from({ length: 10 }, (_, k) => ({
    address: `10.0.0.${k + 1}:80`,
    host: `10.0.0.${k + 1}`,
    port: 80,
    weight: 1,
    backup: false,
    maxConnections: 0,
    maxRate: 0,
    slowStartMs: 0,
  })),
  { allDown: 'try-all', fall: 3, rise: 2, passiveOnly: false, trialBackoffMs: 1000 },
);
const clients = Array.from({ length: 1024 }, (_, k) => `192.168.${k >> 8}.${k & 255}`);

async function pickRate(s: Strategy): Promise<{ rate: number; gcs: number }> {
  s.update(set.candidates);
  const ctx = { clientIp: '', tried: [], now: 1 };
  for (let k = 0; k < 100_000; k++) {
    ctx.clientIp = clients[k & 1023] as string;
    s.pick(ctx);
  }
  await settle();
  const g0 = collections;
  const t0 = performance.now();
  for (let k = 0; k < picks; k++) {
    ctx.clientIp = clients[k & 1023] as string;
    ctx.now = 2 + (k >> 20);
    s.pick(ctx);
  }
  const secs = (performance.now() - t0) / 1000;
  await settle();
  return { rate: picks / secs, gcs: collections - g0 };
}

const rows = ['| pick | picks/s (best of 3) | GCs during the 3 runs |', '|---|---|---|'];
const sticky = (shared: boolean): Strategy => {
  const s = new StickyStrategy(
    createStrategy('least-connections'),
    new StickTable(3_600_000, 100_000),
    'source',
  );
  if (shared) s.write = () => {};
  return s;
};
// Three rounds, interleaved, the best of each: on a shared machine the first row would pay for the JIT and any neighbour's load.
const variants = [
  ['least-connections, no stick table', createStrategy('least-connections')],
  ['stick table, local hit', sticky(false)],
  ['stick table shared (Redis), hit', sticky(true)],
] as const;
const best = variants.map(() => ({ rate: 0, gcs: 0 }));
for (let round = 0; round < 3; round++)
  for (const [k, [, s]] of variants.entries()) {
    const r = await pickRate(s);
    const b = best[k] as { rate: number; gcs: number };
    b.rate = Math.max(b.rate, r.rate);
    b.gcs += r.gcs;
  }
for (const [k, [label]] of variants.entries()) {
  const b = best[k] as { rate: number; gcs: number };
  rows.push(`| ${label} | ${Math.round(b.rate).toLocaleString('en-US')} | ${b.gcs} |`);
}
obs.disconnect();
process.stdout.write(
  `${picks.toLocaleString('en-US')} picks, 1,024 clients, 10 backends\n\n${rows.join('\n')}\n`,
);

// 2. Whole connections.
const backend = createServer((s) => {
  s.on('error', () => {});
  s.end('x');
});
await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
const bport = (backend.address() as { port: number }).port;
const sources = Array.from({ length: 50 }, (_, k) => `127.0.3.${k + 1}`);

// A port the OS just handed out and took back: free for redis-server to bind.
const probe = createServer();
await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
const redisPort = (probe.address() as { port: number }).port;
await new Promise((r) => probe.close(r));
const redis = spawn(
  'redis-server',
  ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
  { stdio: 'ignore' },
);
await waitForPort(redisPort);

async function lbWith(stick: boolean, cluster: boolean, name = 'a'): Promise<LoadBalancer> {
  const lb = new LoadBalancer(
    parseConfig(
      {
        log: { level: 'silent' },
        ...(cluster
          ? {
              cluster: {
                redis: `redis://127.0.0.1:${redisPort}`,
                instance: name,
                wait: '50ms',
                flush_interval: '5ms',
              },
            }
          : {}),
        services: {
          web: {
            listen: '127.0.0.1:0',
            backends: [`127.0.0.1:${bport}`],
            health: { kind: 'none' },
            pool: { min_idle: 0 },
            ...(stick ? { stick: { expire: '1h' } } : {}),
          },
        },
      },
      { allowEphemeralListen: true },
    ),
  );
  await lb.start();
  if (lb.redis) while (!lb.redis.up) await new Promise((r) => setTimeout(r, 10));
  return lb;
}

function once(port: number, from: string): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const c = connect({ port, host: '127.0.0.1', localAddress: from });
    c.on('error', reject);
    c.on('data', () => {});
    c.on('close', () => resolve(performance.now() - t0));
  });
}

async function run(lb: LoadBalancer, n: number, order = sources): Promise<number[]> {
  const port = lb.address('web').port;
  const times: number[] = [];
  for (let k = 0; k < n; k++) times.push(await once(port, order[k % order.length] as string));
  return times;
}

const stat = (t: number[]): string => {
  const s = [...t].sort((a, b) => a - b);
  const mean = s.reduce((x, y) => x + y, 0) / s.length;
  return `${(mean * 1000).toFixed(0)} | ${((s[s.length >> 1] as number) * 1000).toFixed(0)} | ${((s[Math.floor(s.length * 0.99)] as number) * 1000).toFixed(0)}`;
};

const crow = [
  '| connection (connect, banner, close) | mean µs | p50 µs | p99 µs |',
  '|---|---|---|---|',
];
for (const [label, stick, cluster] of [
  ['stick table off', false, false],
  ['stick table on, local hits', true, false],
  ['stick table shared through Redis, hits', true, true],
] as const) {
  const lb = await lbWith(stick, cluster);
  await run(lb, 200); // warm up; every source gets its entry
  crow.push(`| ${label} | ${stat(await run(lb, conns))} |`);
  await lb.close(0);
}
// The entries another instance made: the first connection of each source here waits on one Redis GET.
const a = await lbWith(true, true, 'a');
await run(a, sources.length);
await new Promise((r) => setTimeout(r, 100)); // written behind
const b = await lbWith(true, true, 'b');
crow.push(
  `| shared, first connection through another instance (entry read from Redis) | ${stat(await run(b, sources.length))} |`,
);
await a.close(0);
await b.close(0);
redis.kill('SIGKILL');
backend.close();
process.stdout.write(
  `\n${conns} connections one at a time from ${sources.length} loopback sources\n\n${crow.join('\n')}\n`,
);
process.exit(0);
