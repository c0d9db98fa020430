/**
 * `npm run bench:workers`: the balancer run from the CLI with workers = 1 and
 * workers = 2: on SO_REUSEPORT (the default on Linux: a socket per worker,
 * the kernel hashes each connection to one), and sharing one socket through
 * node:cluster (BLITZ_LB_REUSE_PORT=0) under both accept policies (SCHED_RR:
 * the primary accepts and hands each socket to a worker over IPC;
 * SCHED_NONE: every worker accepts on the shared socket and the kernel
 * picks), under keep-alive and churn load from wrk. The workers goals
 * (bench/goals.ts, WORKER_GOALS) are checked on the reusePort variant. Rounds are interleaved; medians are
 * reported as ratios against workers = 1 from the same run, with CPU per
 * request over the whole process tree and each process's share of it.
 *
 *   node dist/bench/workers.js [--seconds 8] [--rounds 3] [--quick]
 *
 * --quick (CI): one round of 1 s, checks that every figure came out and that
 * no request failed, and writes only results/workers-quick.json.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { WORKER_GOALS } from './goals.js';
import { runLoad } from './lib/load.js';
import { freePort, waitForPort } from './lib/net.js';
import { startHttpBackends } from './lib/peers.js';
import { children, cpuMs, median } from './lib/proc.js';

const here = dirname(fileURLToPath(import.meta.url));
const CLI = join(here, '..', 'src', 'cli.js');

const { values } = parseArgs({
  options: {
    seconds: { type: 'string' },
    rounds: { type: 'string' },
    quick: { type: 'boolean', default: false },
  },
});
const quick = values.quick === true;
const seconds = Number(values.seconds ?? (quick ? 1 : 8));
const rounds = Number(values.rounds ?? (quick ? 1 : 3));

interface Variant {
  name: string;
  workers: number;
  policy: 'rr' | 'none' | null;
  /** false: BLITZ_LB_REUSE_PORT=0, the workers share one socket through node:cluster. */
  reusePort: boolean;
}
const REUSE = 'workers = 2, reusePort';
const VARIANTS: Variant[] = [
  { name: 'workers = 1', workers: 1, policy: null, reusePort: true },
  { name: REUSE, workers: 2, policy: null, reusePort: true },
  { name: 'workers = 2, shared, SCHED_RR', workers: 2, policy: 'rr', reusePort: false },
  { name: 'workers = 2, shared, SCHED_NONE', workers: 2, policy: 'none', reusePort: false },
];

interface Sample {
  rps: number;
  errors: number;
  /** CPU µs per request, all balancer processes together. */
  cpuUs: number;
  /** Share of the balancer's CPU per process: primary first, then workers by pid. */
  split: number[];
  /** Keep-alive only: open sessions per worker mid-run. */
  perWorker: number[];
  /** Each worker's share of the sessions accepted while measuring. */
  acceptedShare: number[];
}

async function startBalancer(
  v: Variant,
  backends: number[],
  dir: string,
): Promise<{ port: number; admin: number; proc: ChildProcess; stop: () => Promise<void> }> {
  const port = await freePort();
  const admin = await freePort();
  const file = join(dir, `${v.workers}-${v.policy}-${v.reusePort}.toml`);
  writeFileSync(
    file,
    [
      '[process]',
      `workers = ${v.workers}`,
      'shutdown_timeout = "1s"',
      '[log]',
      'level = "warn"',
      '[admin]',
      `listen = "127.0.0.1:${admin}"`,
      '[services.bench]',
      `listen = "127.0.0.1:${port}"`,
      'max_connections = 50000',
      `backends = [${backends.map((p) => `"127.0.0.1:${p}"`).join(', ')}]`,
    ].join('\n'),
  );
  const env = { ...process.env };
  if (v.policy) env.NODE_CLUSTER_SCHED_POLICY = v.policy;
  if (!v.reusePort) env.BLITZ_LB_REUSE_PORT = '0';
  const proc = spawn(process.execPath, [CLI, 'run', '--config', file], {
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await waitForPort(port);
  await waitForPort(admin);
  return {
    port,
    admin,
    proc,
    stop: async () => {
      if (proc.exitCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    },
  };
}

async function perWorkerSessions(admin: number): Promise<number[]> {
  const r = await fetch(`http://127.0.0.1:${admin}/api/services`);
  const body = (await r.json()) as {
    services: { activeSessions: number; workers?: { activeSessions: number }[] }[];
  };
  const s = body.services[0];
  return s?.workers ? s.workers.map((w) => w.activeSessions) : [s?.activeSessions ?? 0];
}

/** Sessions accepted so far, per worker (one figure with one process). */
async function acceptedPerWorker(admin: number): Promise<number[]> {
  const r = await fetch(`http://127.0.0.1:${admin}/api/services`);
  const body = (await r.json()) as {
    services: { counters: { accepted: number }; workers?: { accepted: number }[] }[];
  };
  const s = body.services[0];
  return s?.workers ? s.workers.map((w) => w.accepted) : [s?.counters.accepted ?? 0];
}

async function measure(
  v: Variant,
  backends: number[],
  dir: string,
  churn: boolean,
): Promise<Sample> {
  const lb = await startBalancer(v, backends, dir);
  try {
    const pid = lb.proc.pid as number;
    // Warm up (JIT, pools), then measure.
    await runLoad({
      url: `http://127.0.0.1:${lb.port}/`,
      connections: 20,
      seconds: 1,
      churn,
      wrk: true,
    });
    const pids = [pid, ...children(pid)];
    const accepted0 = await acceptedPerWorker(lb.admin);
    const cpu0 = pids.map(cpuMs);
    let perWorker: number[] = [];
    const mid = churn
      ? null
      : new Promise<void>((resolve) =>
          setTimeout(
            async () => {
              perWorker = await perWorkerSessions(lb.admin).catch(() => []);
              resolve();
            },
            (seconds * 1000) / 2,
          ),
        );
    const out = await runLoad({
      url: `http://127.0.0.1:${lb.port}/`,
      connections: churn ? 50 : 100,
      seconds,
      churn,
      wrk: true,
    });
    await mid;
    const used = pids.map((p, i) => cpuMs(p) - (cpu0[i] as number));
    const total = used.reduce((a, b) => a + b, 0);
    const accepted = (await acceptedPerWorker(lb.admin)).map((n, i) => n - (accepted0[i] ?? 0));
    const acceptedTotal = accepted.reduce((a, b) => a + b, 0);
    return {
      rps: out.rps,
      errors: out.errors + out.non2xx,
      cpuUs: out.requests > 0 ? (total * 1000) / out.requests : Number.NaN,
      split: used.map((u) => (total > 0 ? u / total : 0)),
      perWorker,
      acceptedShare: accepted.map((n) => (acceptedTotal > 0 ? n / acceptedTotal : 0)),
    };
  } finally {
    await lb.stop();
  }
}

const fmt = (x: number, d = 2): string => (Number.isFinite(x) ? x.toFixed(d) : '–');
const pct = (x: number): string => `${Math.round(x * 100)} %`;

async function main(): Promise<void> {
  const backends = await startHttpBackends();
  const dir = mkdtempSync(join(tmpdir(), 'blitz-workers-'));
  const results: Record<string, Record<string, Sample[]>> = { 'keep-alive': {}, churn: {} };
  try {
    for (let round = 1; round <= rounds; round++) {
      for (const scenario of ['keep-alive', 'churn'] as const) {
        for (const v of VARIANTS) {
          const s = await measure(v, backends.ports, dir, scenario === 'churn');
          const byVariant = results[scenario] as Record<string, Sample[]>;
          byVariant[v.name] = [...(byVariant[v.name] ?? []), s];
          process.stderr.write(
            `round ${round} ${scenario} ${v.name}: ${Math.round(s.rps)} req/s, ${fmt(s.cpuUs, 1)} µs CPU/req, split ${s.split.map(pct).join(' / ')}${s.perWorker.length ? `, sessions per worker ${s.perWorker.join(' / ')}` : ''}, accepted per worker ${s.acceptedShare.map(pct).join(' / ')}, errors ${s.errors}\n`,
          );
        }
      }
    }
  } finally {
    await backends.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const lines = [
    `# blitz-lb workers bench`,
    '',
    `${new Date().toISOString()}, node ${process.version}, ${rounds} rounds × ${seconds} s, wrk -t1, backends: ${backends.kind}. Medians; ratios against workers = 1 in the same run.`,
    '',
    '| scenario | variant | req/s | vs 1 worker | CPU µs/req | CPU split (primary / workers) | open sessions per worker mid-run, each round | accepted per worker, each round | errors |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  const summary: Record<string, unknown> = {};
  for (const [scenario, byVariant] of Object.entries(results)) {
    const base = median((byVariant['workers = 1'] ?? []).map((s) => s.rps));
    for (const v of VARIANTS) {
      const ss = byVariant[v.name] ?? [];
      const rps = median(ss.map((s) => s.rps));
      const cpu = median(ss.map((s) => s.cpuUs));
      const width = Math.max(...ss.map((s) => s.split.length));
      const split = Array.from({ length: width }, (_, i) => median(ss.map((s) => s.split[i] ?? 0)));
      const per = ss.filter((s) => s.perWorker.length > 0).map((s) => s.perWorker.join('/'));
      const shares = ss.map((s) => s.acceptedShare.map((x) => Math.round(x * 100)).join('/'));
      const errors = ss.reduce((n, s) => n + s.errors, 0);
      lines.push(
        `| ${scenario} | ${v.name} | ${Math.round(rps)} | ${fmt(rps / base)}x | ${fmt(cpu, 1)} | ${split.map(pct).join(' / ')} | ${per.join(', ') || '–'} | ${v.workers > 1 ? shares.join(', ') : '–'} | ${errors} |`,
      );
      summary[`${scenario} / ${v.name}`] = {
        rps,
        vsOne: rps / base,
        cpuUs: cpu,
        split,
        perWorker: per,
        acceptedShare: ss.map((s) => s.acceptedShare),
        errors,
      };
    }
  }
  lines.push('', ...goalLines(results), '');
  const md = `${lines.join('\n')}\n`;
  process.stdout.write(md);
  const out = join(here, '..', '..', 'bench', 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(
    join(out, quick ? 'workers-quick.json' : 'workers.json'),
    `${JSON.stringify({ seconds, rounds, summary, results }, null, 2)}\n`,
  );
  if (!quick) writeFileSync(join(here, '..', '..', 'bench', 'WORKERS.md'), md);
  const bad = Object.entries(summary).filter(([, v]) => {
    const f = v as { rps: number; cpuUs: number; errors: number };
    return !(f.rps > 0 && f.cpuUs > 0 && f.errors === 0);
  });
  if (bad.length > 0) {
    process.stderr.write(
      `bench:workers: missing figures or errors in ${bad.map(([k]) => k).join(', ')}\n`,
    );
    process.exitCode = 1;
  }
}

/** The workers goals (bench/goals.ts) on the reusePort variant, from this run. */
function goalLines(results: Record<string, Record<string, Sample[]>>): string[] {
  const out = [
    '### goals (bench/goals.ts, WORKER_GOALS)',
    '',
    '| goal | bound | this run | |',
    '|---|---|---|---|',
  ];
  const verdict = (ok: boolean, x: number): string =>
    Number.isFinite(x) ? (ok ? 'met' : 'missed') : '– (not measured)';
  for (const scenario of ['churn', 'keep-alive'] as const) {
    const ss = results[scenario]?.[REUSE] ?? [];
    const worst = Math.min(...ss.map((s) => Math.min(...s.acceptedShare)));
    out.push(
      `| ${scenario}: each worker's share of the sessions accepted, every round | ≥ ${pct(WORKER_GOALS.minShare)} | ${Number.isFinite(worst) ? `lowest ${pct(worst)}` : '–'} | ${verdict(worst >= WORKER_GOALS.minShare, worst)} |`,
    );
  }
  const churn = results.churn ?? {};
  const x =
    median((churn[REUSE] ?? []).map((s) => s.cpuUs)) /
    median((churn['workers = 1'] ?? []).map((s) => s.cpuUs));
  out.push(
    `| churn: CPU per connection, workers = 2 (reusePort) vs workers = 1 | ≤ ${WORKER_GOALS.churnCpuRatio}x | ${fmt(x)}x | ${verdict(x <= WORKER_GOALS.churnCpuRatio, x)} |`,
    '',
    'Each worker’s share is of the sessions accepted over the measured seconds of a round (the admin API’s per-worker counters). Keep-alive opens 100 connections in the measured seconds, so its share is a count of 100 hashed connections: binomial, σ = 5 %, and a round outside 45/55 is then chance, not skew; churn accepts thousands a round.',
  );
  return out;
}

await main();
