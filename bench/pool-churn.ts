/**
 * The warm pool's effect on connection churn: the same Connection: close
 * load through blitz-lb with the pool off (min_idle = 0) and on (defaults),
 * interleaved for several rounds, medians reported.
 *
 *   npm run build && node dist/bench/pool-churn.js [--seconds 10] [--rounds 3]
 */
import { type LbStats, snapshotQuantile, startBackends, startLb } from './lib/children.js';
import { runLoad } from './lib/load.js';
import { cpuMs, median } from './lib/proc.js';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const seconds = arg('seconds', 10);
const rounds = arg('rounds', 3);

const backends = await startBackends(3);
const targets = [
  { name: 'pool off (min_idle = 0)', pool: { min_idle: 0 } },
  { name: 'pool on (defaults)', pool: {} },
];

interface Row {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  cpuUsPerReq: number;
  stats: LbStats;
}
let tool = '';
const results = new Map<string, Row[]>(targets.map((t) => [t.name, []]));

for (let round = 0; round < rounds; round++) {
  for (const t of targets) {
    const lb = await startLb({
      log: { level: 'warn' },
      services: {
        bench: {
          listen: '127.0.0.1:0',
          backends: backends.ports.map((p) => `127.0.0.1:${p}`),
          health: { kind: 'tcp', interval: '5s' },
          pool: t.pool,
        },
      },
    });
    // Let the pool fill before the clock starts, as it would in steady state.
    await new Promise((r) => setTimeout(r, 300));
    const cpu0 = cpuMs(lb.proc.pid as number);
    const r = await runLoad({
      url: `http://127.0.0.1:${lb.port}/`,
      connections: 50,
      seconds,
      churn: true,
    });
    tool = r.tool;
    const cpu1 = cpuMs(lb.proc.pid as number);
    const stats = await lb.stats();
    await lb.stop();
    const reqs = r.requests;
    (results.get(t.name) as Row[]).push({
      rps: r.rps,
      p50: r.p50,
      p99: r.p99,
      errors: r.errors,
      non2xx: r.non2xx,
      cpuUsPerReq: reqs > 0 ? ((cpu1 - cpu0) * 1000) / reqs : Number.NaN,
      stats,
    });
    process.stderr.write(`round ${round + 1}/${rounds} ${t.name}: ${Math.round(r.rps)} req/s\n`);
  }
}
backends.proc.kill();

const base = median((results.get(targets[0]?.name as string) as Row[]).map((x) => x.rps));
const us = (s: number): string => (Number.isFinite(s) ? `${Math.round(s * 1e6)} µs` : '-');
const lines = [
  `Connection churn (new connection per request, ${tool}), 50 connections, ${seconds} s x ${rounds} rounds, interleaved; medians.`,
  '',
  '| target | req/s | vs pool off | p50 ms | p99 ms | errors | LB CPU µs/req | pool hits | misses | accept→ready p50 (hit / miss) | p99 (hit / miss) |',
  '|---|---|---|---|---|---|---|---|---|---|---|',
];
for (const t of targets) {
  const rows = results.get(t.name) as Row[];
  const last = rows[rows.length - 1] as Row;
  const rps = median(rows.map((x) => x.rps));
  lines.push(
    `| ${t.name} | ${Math.round(rps)} | ${(rps / base).toFixed(2)}x | ${median(rows.map((x) => x.p50))} | ${median(rows.map((x) => x.p99))} | ${rows.reduce((n, x) => n + x.errors + x.non2xx, 0)} | ${median(rows.map((x) => x.cpuUsPerReq)).toFixed(1)} | ${last.stats.pool.hits} | ${last.stats.pool.misses} | ${us(snapshotQuantile(last.stats.hit, 0.5))} / ${us(snapshotQuantile(last.stats.miss, 0.5))} | ${us(snapshotQuantile(last.stats.hit, 0.99))} / ${us(snapshotQuantile(last.stats.miss, 0.99))} |`,
  );
}
process.stdout.write(`${lines.join('\n')}\n`);
