/**
 * npm run bench [-- --quick] [--tls-only] [--rounds N] [--seconds S]
 *
 * Scenarios (keep-alive, churn, bulk, idle) against every target (direct,
 * blitz-lb, blitz-lb with the pool off, node-tcp-proxy, HAProxy and nginx
 * stream when installed), and the TLS group (tls-handshake, tls-keep-alive:
 * termination; tls-pool: TLS to backends) against blitz-lb, HAProxy and
 * nginx stream, run interleaved A B C A B C… for several rounds; medians
 * reported as a markdown table, bench/results/latest.json and
 * bench/RESULTS.md with SVG charts beside it (redrawn alone by bench/charts.ts). --quick is a one-round smoke of everything that checks
 * only that every figure came out. --tls-only runs the TLS group alone
 * (results in bench/results/tls-only.json or quick-tls.json; RESULTS.md is
 * left alone).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { onPath } from './lib/load.js';
import {
  blitzDefault,
  blitzNoPool,
  direct,
  haproxy,
  MAX_SESSIONS,
  nginxStream,
  nodeTcpProxy,
  type Running,
  startBulkBackend,
  startHttpBackends,
  type Target,
} from './lib/peers.js';
import { median } from './lib/proc.js';
import { markdown, type Results, validate } from './lib/report.js';
import { writeResultsPage } from './lib/results-page.js';
import { bulk, type Figures, httpLoad, idle, type ScenarioOpts } from './lib/scenarios.js';
import { type BenchCerts, makeBenchCerts } from './lib/tls-certs.js';
import {
  blitzBackendTls,
  blitzTls,
  haproxyBackendTls,
  haproxyTls,
  nginxStreamBackendTls,
  nginxStreamTls,
  startHttpsBackends,
} from './lib/tls-peers.js';
import { tlsHandshakes, tlsKeepAlive, tlsPool } from './lib/tls-scenarios.js';

const argv = process.argv.slice(2);
const flag = (name: string): boolean => argv.includes(`--${name}`);
const num = (name: string, dflt: number): number => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const startedAt = Date.now();
const quick = flag('quick');
const tlsOnly = flag('tls-only');
/** --only NAME[,NAME]: just these scenarios (a probe while profiling; writes no results file). */
const onlyArg = argv.indexOf('--only');
const only = onlyArg >= 0 ? (argv[onlyArg + 1] ?? '').split(',') : null;
const rounds = num('rounds', quick ? 1 : 3);
const opts: ScenarioOpts = {
  seconds: num('seconds', quick ? 2 : 10),
  bulkBytes: quick ? 64 * 2 ** 20 : 2 ** 30,
  // 9,000: blitz-lb keeps 5 % of its descriptor limit (1,000 of 20,000) in reserve, and a session costs two.
  idleSessions: quick ? 500 : Math.min(9_000, MAX_SESSIONS),
  ttfbConnections: quick ? 150 : 500,
};

const targets: Target[] = tlsOnly ? [] : [direct, blitzDefault, blitzNoPool, nodeTcpProxy];
if (!tlsOnly) for (const peer of [haproxy(), nginxStream()]) if (peer) targets.push(peer);

// One certificate for the whole run; without the openssl CLI the TLS group is skipped.
const certs: BenchCerts | null = onPath('openssl') ? makeBenchCerts() : null;
if (!certs) process.stderr.write('bench: no openssl CLI, so no TLS scenarios\n');
const present = (ts: (Target | null)[]): Target[] => ts.filter((t): t is Target => t !== null);
const tlsTargets = certs
  ? present([blitzTls(certs), haproxyTls(certs), nginxStreamTls(certs)])
  : [];
const poolTargets = certs
  ? present([
      blitzBackendTls(certs, true),
      blitzBackendTls(certs, false),
      haproxyBackendTls(certs),
      nginxStreamBackendTls(certs),
    ])
  : [];

type Scenario = {
  name: string;
  /** plain HTTP, the bulk peer, or HTTPS backends. */
  backends: 'http' | 'bulk' | 'https';
  targets: Target[];
  run: (r: Running) => Promise<Figures>;
};
const allScenarios: Scenario[] = [
  { name: 'keep-alive', backends: 'http', targets, run: (r) => httpLoad(r, opts, false) },
  { name: 'churn', backends: 'http', targets, run: (r) => httpLoad(r, opts, true) },
  { name: 'bulk', backends: 'bulk', targets, run: (r) => bulk(r, opts) },
  { name: 'idle', backends: 'http', targets, run: (r) => idle(r, opts) },
  {
    name: 'tls-handshake',
    backends: 'http',
    targets: tlsTargets,
    run: (r) => tlsHandshakes(r, opts),
  },
  {
    name: 'tls-keep-alive',
    backends: 'http',
    targets: tlsTargets,
    run: (r) => tlsKeepAlive(r, opts),
  },
  { name: 'tls-pool', backends: 'https', targets: poolTargets, run: (r) => tlsPool(r, opts) },
];
const scenarios = only ? allScenarios.filter((sc) => only.includes(sc.name)) : allScenarios;

const total = rounds * scenarios.reduce((n, sc) => n + sc.targets.length, 0);
let done = 0;
function progress(label: string): void {
  const width = 30;
  const filled = Math.round((done / total) * width);
  process.stderr.write(
    `\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${label.padEnd(48)}`,
  );
}

const http = await startHttpBackends();
const bulkPeer = tlsOnly ? null : await startBulkBackend();
const https = certs && poolTargets.length > 0 ? await startHttpsBackends(certs) : null;
const ports = (b: Scenario['backends']): number[] =>
  b === 'http' ? http.ports : b === 'https' ? (https?.ports ?? []) : [bulkPeer?.port as number];
const raw: Record<string, Record<string, Figures[]>> = {};
try {
  for (let round = 1; round <= rounds; round++) {
    for (const sc of scenarios) {
      for (const t of sc.targets) {
        if (sc.name === 'idle' && t === direct) {
          done++;
          continue;
        }
        progress(`round ${round} ${sc.name} ${t.name}`);
        const running = await t.start(ports(sc.backends));
        // blitz-lb fills its pool in the background; give every target the same settling time.
        await new Promise((r) => setTimeout(r, 300));
        try {
          const f = await sc.run(running);
          raw[sc.name] ??= {};
          const byTarget = raw[sc.name] as Record<string, Figures[]>;
          byTarget[t.name] ??= [];
          byTarget[t.name]?.push(f);
        } finally {
          await running.stop();
        }
        done++;
      }
    }
  }
} finally {
  await http.stop();
  await bulkPeer?.stop();
  await https?.stop();
  certs?.cleanup();
}
progress('done');
process.stderr.write('\n');

const med = (xs: (number | undefined)[]): number => median(xs.map((x) => x ?? Number.NaN));
const results: Results = {
  date: new Date().toISOString(),
  quick,
  rounds,
  opts,
  machine: {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    node: process.version,
    backends: http.kind,
    tlsBackends: https?.kind ?? null,
    haproxy: version('haproxy', ['-v']),
    nginx: version('nginx', ['-v']),
  },
  scenarios: {},
};
for (const [sc, byTarget] of Object.entries(raw)) {
  results.scenarios[sc] = {};
  for (const [t, runs] of Object.entries(byTarget)) {
    results.scenarios[sc][t] = {
      rps: med(runs.map((r) => r.rps)),
      p50: med(runs.map((r) => r.p50)),
      p99: med(runs.map((r) => r.p99)),
      errors: runs.reduce((n, r) => n + r.errors, 0),
      cpuUs: med(runs.map((r) => r.cpuUs)),
      peakRssMiB: med(runs.map((r) => r.peakRssMiB)),
      gbitUp: med(runs.map((r) => r.gbitUp)),
      gbitDown: med(runs.map((r) => r.gbitDown)),
      kibPerSession: med(runs.map((r) => r.kibPerSession)),
      ...(runs[0]?.loadCpuPct !== undefined
        ? { loadCpuPct: med(runs.map((r) => r.loadCpuPct)) }
        : {}),
      ...(runs[0]?.poolHitPct !== undefined
        ? { poolHitPct: med(runs.map((r) => r.poolHitPct)) }
        : {}),
      tool: runs[0]?.tool,
    };
  }
}

const table = markdown(results);
process.stdout.write(`${table}\n`);
const benchDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench');
mkdirSync(join(benchDir, 'results'), { recursive: true });
if (only) process.exit(0);
// A TLS-only run must not replace the full run's files.
const file = tlsOnly
  ? quick
    ? 'quick-tls.json'
    : 'tls-only.json'
  : quick
    ? 'quick.json'
    : 'latest.json';
writeFileSync(join(benchDir, 'results', file), `${JSON.stringify(results, null, 2)}\n`);
// RESULTS.md and its SVG charts (CPU per request, per connection, memory per session).
if (!quick && !tlsOnly) writeResultsPage(benchDir, results);
const problems = validate(results, {
  plain: targets.map((t) => t.name),
  tls: tlsTargets.map((t) => t.name),
  pool: poolTargets.map((t) => t.name),
});
// How long a run takes (a full one: about 25 minutes on 2 cores), so it can be planned.
process.stderr.write(`bench: ${Math.round((Date.now() - startedAt) / 1000)} s\n`);
if (problems.length > 0) {
  process.stderr.write(`bench: invalid output:\n  ${problems.join('\n  ')}\n`);
  process.exit(1);
}

function version(cmd: string, args: string[]): string | null {
  // nginx -v prints to stderr, haproxy -v to stdout.
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) return null;
  return (r.stdout || r.stderr).split('\n')[0] ?? null;
}
