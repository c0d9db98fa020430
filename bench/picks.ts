/**
 * Picks per second per strategy, and heap growth over 10 million picks: a
 * strategy must allocate nothing per pick (house rule 6). Then the time of
 * one ip-hash (Maglev) table rebuild at 10,000 backends, equal and skewed
 * weights: a rebuild blocks the event loop, so it must stay in tens of ms.
 *
 *   npm run bench:picks            (node --expose-gc dist/bench/picks.js [--picks N] [--rebuilds N])
 */
import { PerformanceObserver } from 'node:perf_hooks';
import type { Backend } from '../src/backend/backend.js';
import { BackendSet } from '../src/backend/backend-set.js';
import { createStrategy, STRATEGY_NAMES } from '../src/balancer/index.js';
import { IpHash } from '../src/balancer/ip-hash.js';
import type { PickContext } from '../src/balancer/strategy.js';

const i = process.argv.indexOf('--picks');
const picks = i > 0 ? Number(process.argv[i + 1]) : 10_000_000;
const r = process.argv.indexOf('--rebuilds');
const rebuilds = r > 0 ? Number(process.argv[r + 1]) : 5;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  process.stderr.write('run with node --expose-gc for the heap figure\n');
}

const set = new BackendSet(
  Array.from({ length: 10 }, (_, k) => ({
    address: `10.0.0.${k + 1}:80`,
    host: `10.0.0.${k + 1}`,
    port: 80,
    weight: 1 + (k % 3),
    backup: false,
    maxConnections: 0,
    maxRate: 0,
    slowStartMs: 0,
  })),
  { allDown: 'try-all', fall: 3, rise: 2, passiveOnly: false, trialBackoffMs: 1000 },
);

let seed = 1;
const rng = (): number => {
  seed = (seed * 16807) % 2147483647;
  return seed / 2147483647;
};
const clients = Array.from({ length: 1024 }, (_, k) => `192.168.${k >> 8}.${k & 255}`);

// Garbage would be collected as it goes, so heap size alone could hide it: count the collections too.
let collections = 0;
const obs = new PerformanceObserver((list) => {
  collections += list.getEntries().length;
});
obs.observe({ entryTypes: ['gc'] });
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

const rows: string[] = [
  '| strategy | picks/s | heap growth | GCs during the picks |',
  '|---|---|---|---|',
];
for (const name of STRATEGY_NAMES) {
  const s = createStrategy(name, { rng });
  s.update(set.candidates);
  // least-latency: every backend measured (1-10 ms), so picks take the decay path, not the unmeasured one.
  set.candidates.forEach((b, k) => {
    s.observe?.(b, 1 + k, 0);
  });
  const ctx: PickContext = { clientIp: clients[0] as string, tried: [], now: 0 };
  for (let k = 0; k < 100_000; k++) s.pick(ctx); // warm up the JIT
  gc?.();
  await settle();
  const gcs0 = collections;
  const heap0 = process.memoryUsage().heapUsed;
  const t0 = performance.now();
  for (let k = 0; k < picks; k++) {
    ctx.clientIp = clients[k & 1023] as string;
    // Time moves (1 µs a pick), so least-latency's estimates decay as they would.
    ctx.now = k / 1000;
    s.pick(ctx);
  }
  const secs = (performance.now() - t0) / 1000;
  const growth = process.memoryUsage().heapUsed - heap0;
  await settle();
  const gcs = collections - gcs0;
  rows.push(
    `| ${name} | ${Math.round(picks / secs).toLocaleString('en-US')} | ${(growth / 1024).toFixed(1)} KiB | ${gcs} |`,
  );
}
obs.disconnect();
process.stdout.write(
  `${picks.toLocaleString('en-US')} picks over 10 backends (weights 1-3), heap measured after a full GC\n\n${rows.join('\n')}\n`,
);

/**
 * One rebuild = `update` with a new candidate list, then one lookup (which
 * builds the table if the strategy defers it). The lists alternate between all
 * backends and all but the last, as a health change would.
 */
function rebuildMs(weight: (k: number) => number): { first: number; median: number; max: number } {
  const big = new BackendSet(
    Array.from({ length: 10_000 }, (_, k) => ({
      address: `10.${k >> 8}.${k & 255}.1:80`,
      host: `10.${k >> 8}.${k & 255}.1`,
      port: 80,
      weight: weight(k),
      backup: false,
      maxConnections: 0,
      maxRate: 0,
      slowStartMs: 0,
    })),
    { allDown: 'try-all', fall: 3, rise: 2, passiveOnly: false, trialBackoffMs: 1000 },
  );
  const all = big.candidates;
  const lists: (readonly Backend[])[] = [all, all.slice(0, -1)];
  const m = new IpHash();
  const times: number[] = [];
  gc?.(); // the garbage of building 10,000 backends is not the rebuild's
  for (let k = 0; k <= rebuilds; k++) {
    const t0 = performance.now();
    m.update(lists[k & 1] as readonly Backend[]);
    m.owner('192.168.0.1');
    times.push(performance.now() - t0);
  }
  const first = times.shift() as number;
  times.sort((a, b) => a - b);
  return {
    first,
    median: times[times.length >> 1] as number,
    max: times[times.length - 1] as number,
  };
}

const rebuildRows: string[] = [
  '| weights | first build ms | rebuild ms, median | rebuild ms, max |',
  '|---|---|---|---|',
];
for (const [label, weight] of [
  ['all 1', () => 1],
  ['one 1,000,000, the rest 1', (k: number) => (k === 0 ? 1_000_000 : 1)],
  ['1 to 1,000 (k mod 1000 + 1)', (k: number) => (k % 1000) + 1],
] as const) {
  const t = rebuildMs(weight);
  rebuildRows.push(
    `| ${label} | ${t.first.toFixed(1)} | ${t.median.toFixed(1)} | ${t.max.toFixed(1)} |`,
  );
}
process.stdout.write(
  `\nip-hash table rebuild, 10,000 backends, 65,537 slots (${rebuilds} rebuilds after the first)\n\n${rebuildRows.join('\n')}\n`,
);
