/**
 * Picks per second per strategy, and heap growth over 10 million picks: a
 * strategy must allocate nothing per pick (house rule 6).
 *
 *   npm run bench:picks            (node --expose-gc dist/bench/picks.js [--picks N])
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { BackendSet } from '../src/backend/backend-set.js';
import { createStrategy, STRATEGY_NAMES } from '../src/balancer/index.js';
import type { PickContext } from '../src/balancer/strategy.js';

const i = process.argv.indexOf('--picks');
const picks = i > 0 ? Number(process.argv[i + 1]) : 10_000_000;
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
  const ctx: PickContext = { clientIp: clients[0] as string, tried: [], now: 0 };
  for (let k = 0; k < 100_000; k++) s.pick(ctx); // warm up the JIT
  gc?.();
  await settle();
  const gcs0 = collections;
  const heap0 = process.memoryUsage().heapUsed;
  const t0 = performance.now();
  for (let k = 0; k < picks; k++) {
    ctx.clientIp = clients[k & 1023] as string;
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
