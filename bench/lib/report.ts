import { GOALS, type Goal } from '../goals.js';
import type { ScenarioOpts } from './scenarios.js';

export interface Summary {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  cpuUs: number;
  peakRssMiB: number;
  gbitUp: number;
  gbitDown: number;
  kibPerSession: number;
  tool?: string;
}

export interface Results {
  date: string;
  quick: boolean;
  rounds: number;
  opts: ScenarioOpts;
  machine: Record<string, string | number | null>;
  scenarios: Record<string, Record<string, Summary>>;
}

const f = (x: number, digits = 0): string => (Number.isFinite(x) ? x.toFixed(digits) : '–');
const ratio = (x: number, base: number | undefined): string =>
  base !== undefined && Number.isFinite(x) && Number.isFinite(base) && base > 0
    ? `${(x / base).toFixed(2)}x`
    : '–';

/** Ratios are against HAProxy when it ran, else against node-tcp-proxy, both measured in the same run. */
function baselineName(r: Results): string {
  return r.scenarios['keep-alive']?.haproxy ? 'haproxy' : 'node-tcp-proxy';
}

/** The tables of a run; `charts` (markdown lines) go after the header, before the tables. */
export function markdown(r: Results, charts: readonly string[] = []): string {
  const base = baselineName(r);
  const out: string[] = [
    `${r.date.slice(0, 10)} · ${r.machine.cpu}, ${r.machine.cores} cores · Node ${r.machine.node} · backends: ${r.machine.backends}`,
    `${r.machine.haproxy ?? 'HAProxy not installed'} · ${r.machine.nginx ?? 'nginx not installed'}`,
    `${r.rounds} interleaved round(s), medians; ${r.opts.seconds} s per HTTP run; bulk ${r.opts.bulkBytes / 2 ** 20} MiB each way; idle ${r.opts.idleSessions} sessions. Ratios are against ${base} in the same run.`,
    '',
    ...charts,
  ];
  for (const sc of ['keep-alive', 'churn']) {
    const rows = r.scenarios[sc];
    if (!rows) continue;
    const b = rows[base];
    const tool = Object.values(rows)[0]?.tool ?? '';
    out.push(
      `### ${sc} (${sc === 'churn' ? '50 connections, a new connection per request' : '100 connections'}; ${tool})`,
      '',
    );
    out.push(
      `| target | req/s | vs ${base} | p50 ms | p99 ms | errors | CPU µs/req | vs ${base} | peak RSS MiB |`,
      '|---|---|---|---|---|---|---|---|---|',
    );
    for (const [t, s] of Object.entries(rows)) {
      out.push(
        `| ${t} | ${f(s.rps)} | ${ratio(s.rps, b?.rps)} | ${f(s.p50, 2)} | ${f(s.p99, 2)} | ${s.errors} | ${f(s.cpuUs, 1)} | ${ratio(s.cpuUs, b?.cpuUs)} | ${f(s.peakRssMiB, 1)} |`,
      );
    }
    out.push('');
  }
  const bulk = r.scenarios.bulk;
  if (bulk) {
    const b = bulk[base];
    out.push(
      '### bulk (one stream each way)',
      '',
      `| target | up Gbit/s | down Gbit/s | vs ${base} (mean) | CPU ms/GiB | peak RSS MiB | failed transfers |`,
      '|---|---|---|---|---|---|---|',
    );
    for (const [t, s] of Object.entries(bulk)) {
      const mean = (s.gbitUp + s.gbitDown) / 2;
      const bmean = b ? (b.gbitUp + b.gbitDown) / 2 : Number.NaN;
      out.push(
        `| ${t} | ${f(s.gbitUp, 2)} | ${f(s.gbitDown, 2)} | ${ratio(mean, bmean)} | ${f(s.cpuUs / 1000, 0)} | ${f(s.peakRssMiB, 1)} | ${s.errors} |`,
      );
    }
    out.push('');
  }
  const idle = r.scenarios.idle;
  if (idle) {
    const b = idle[base];
    out.push(
      `### idle (${r.opts.idleSessions} open idle sessions)`,
      '',
      `| target | KiB per session | vs ${base} | peak RSS MiB | errors |`,
      '|---|---|---|---|---|',
    );
    for (const [t, s] of Object.entries(idle)) {
      out.push(
        `| ${t} | ${f(s.kibPerSession, 2)} | ${ratio(s.kibPerSession, b?.kibPerSession)} | ${f(s.peakRssMiB, 1)} | ${s.errors} |`,
      );
    }
    out.push('');
  }
  out.push(...goalsTable(r));
  return out.join('\n');
}

function figure(s: Summary | undefined, f: Goal['figure']): number {
  if (!s) return Number.NaN;
  return f === 'bulkMean' ? (s.gbitUp + s.gbitDown) / 2 : s[f];
}

/** One row per goal (bench/goals.ts): the ratio in this run, and whether it meets its bound. */
function goalsTable(r: Results): string[] {
  const out = [
    '### goals (bench/goals.ts)',
    '',
    '| goal | bound | this run | |',
    '|---|---|---|---|',
  ];
  for (const goal of GOALS) {
    const rows = r.scenarios[goal.scenario];
    const x = figure(rows?.[goal.target], goal.figure) / figure(rows?.[goal.peer], goal.figure);
    const met = goal.op === '<=' ? x <= goal.bound : x >= goal.bound;
    const verdict = Number.isFinite(x) ? (met ? 'met' : 'missed') : '– (not measured)';
    out.push(
      `| ${goal.row} | ${goal.op === '<=' ? '≤' : '≥'} ${goal.bound}x | ${Number.isFinite(x) ? `${x.toFixed(2)}x` : '–'} | ${verdict} |`,
    );
  }
  out.push(
    '',
    'Idle memory per session is the least-squares slope of the balancer’s RSS over the sessions open, read after each quarter of them: what it holds regardless of sessions (the warm pool’s idle sockets) is in the intercept, not the slope.',
    '',
  );
  return out;
}

/** The quick mode's only check: every target has every figure it should. */
export function validate(r: Results, targets: string[]): string[] {
  const problems: string[] = [];
  for (const t of targets) {
    const ka = r.scenarios['keep-alive']?.[t];
    const ch = r.scenarios.churn?.[t];
    const bu = r.scenarios.bulk?.[t];
    if (!ka || !(ka.rps > 0)) problems.push(`keep-alive ${t}: no req/s`);
    if (!ch || !(ch.rps > 0)) problems.push(`churn ${t}: no req/s`);
    // A peer that loses data (node-tcp-proxy truncates downloads) yields errors, which is a valid finding.
    if (!bu || !((bu.gbitUp > 0 && bu.gbitDown > 0) || bu.errors > 0))
      problems.push(`bulk ${t}: no throughput`);
    if (t.startsWith('blitz-lb') && bu && bu.errors > 0)
      problems.push(`bulk ${t}: ${bu.errors} failed transfers`);
    if (t !== 'direct') {
      const id = r.scenarios.idle?.[t];
      if (!id || !Number.isFinite(id.kibPerSession)) problems.push(`idle ${t}: no memory figure`);
      if (!ka || !(ka.cpuUs > 0)) problems.push(`keep-alive ${t}: no CPU figure`);
    }
  }
  return problems;
}
