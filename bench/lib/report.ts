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
  /** TLS handshakes: the load generator's CPU, % of one core. */
  loadCpuPct?: number;
  /** TLS to backends, blitz-lb: % of client connections given a warm socket. */
  poolHitPct?: number;
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
    `${r.rounds} interleaved round(s), medians; ${r.opts.seconds} s per HTTP run; bulk ${r.opts.bulkBytes / 2 ** 20} MiB each way; idle ${r.opts.idleSessions} sessions. ${r.scenarios['keep-alive'] ? `Ratios are against ${base} in the same run; ` : ''}TLS ratios against haproxy.`,
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
  out.push(...tlsTables(r));
  out.push(...goalsTable(r));
  return out.join('\n');
}

/** The TLS group (issue 15): termination (handshakes, keep-alive) and TLS to backends; ratios against HAProxy. */
function tlsTables(r: Results): string[] {
  const base = 'haproxy';
  const out: string[] = [];
  const hs = r.scenarios['tls-handshake'];
  if (hs) {
    const b = hs[base];
    out.push(
      `### TLS termination: new connections (a full ECDSA P-256 handshake per request, no resumption, to the plain backends; ${Object.values(hs)[0]?.tool ?? ''})`,
      '',
      `| target | handshakes/s | vs ${base} | p50 ms | p99 ms | errors | CPU µs/handshake | vs ${base} | peak RSS MiB | load generator CPU % (summed) |`,
      '|---|---|---|---|---|---|---|---|---|---|',
    );
    for (const [t, s] of Object.entries(hs)) {
      out.push(
        `| ${t} | ${f(s.rps)} | ${ratio(s.rps, b?.rps)} | ${f(s.p50, 2)} | ${f(s.p99, 2)} | ${s.errors} | ${f(s.cpuUs, 1)} | ${ratio(s.cpuUs, b?.cpuUs)} | ${f(s.peakRssMiB, 1)} | ${f(s.loadCpuPct ?? Number.NaN)} |`,
      );
    }
    out.push(
      '',
      'p50 / p99: the whole connection (connect, handshake, GET, response, close). The load generator’s CPU is summed over its processes (% of one core each); on 2 cores it competes with the target, so handshakes/s is partly the machine’s limit, while CPU per handshake is the target’s own.',
      '',
    );
  }
  const ka = r.scenarios['tls-keep-alive'];
  if (ka) {
    const b = ka[base];
    out.push(
      `### TLS termination: keep-alive (100 long-lived TLS connections; ${Object.values(ka)[0]?.tool ?? ''})`,
      '',
      `| target | req/s | vs ${base} | p50 ms | p99 ms | errors | CPU µs/req | vs ${base} | peak RSS MiB |`,
      '|---|---|---|---|---|---|---|---|---|',
    );
    for (const [t, s] of Object.entries(ka)) {
      out.push(
        `| ${t} | ${f(s.rps)} | ${ratio(s.rps, b?.rps)} | ${f(s.p50, 2)} | ${f(s.p99, 2)} | ${s.errors} | ${f(s.cpuUs, 1)} | ${ratio(s.cpuUs, b?.cpuUs)} | ${f(s.peakRssMiB, 1)} |`,
      );
    }
    out.push('');
  }
  const pool = r.scenarios['tls-pool'];
  if (pool) {
    const b = pool[base];
    out.push(
      `### TLS to backends: connect latency (plain clients, HTTPS backends; ${Object.values(pool)[0]?.tool ?? ''})`,
      '',
      `| target | p50 ms | vs ${base} | p99 ms | vs ${base} | errors | warm socket % | CPU µs/connection | peak RSS MiB |`,
      '|---|---|---|---|---|---|---|---|---|',
    );
    for (const [t, s] of Object.entries(pool)) {
      out.push(
        `| ${t} | ${f(s.p50, 2)} | ${ratio(s.p50, b?.p50)} | ${f(s.p99, 2)} | ${ratio(s.p99, b?.p99)} | ${s.errors} | ${f(s.poolHitPct ?? Number.NaN)} | ${f(s.cpuUs, 1)} | ${f(s.peakRssMiB, 1)} |`,
      );
    }
    out.push(
      '',
      'Milliseconds from the client’s connect() to the first response byte. blitz-lb’s warm pool holds handshaken TLS sockets ([services.NAME.backend_tls]), so a client skips the backend’s TCP connect and TLS handshake; with the pool off, and for HAProxy (`server … ssl verify required`) and nginx stream (`proxy_ssl on`), each client connection dials and handshakes (resuming the backend’s session). Warm socket %: blitz-lb’s pool hits over its takes in the run. CPU per connection includes the pool’s refills and health probes.',
      '',
    );
  }
  return out;
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
    'Idle memory per session is the least-squares slope of the balancer’s RSS over the sessions open, read after each quarter of them: what it holds regardless of sessions (the warm pool’s idle sockets) is in the intercept, not the slope. Each idle session first carries one HTTP request and its reply, so every target holds both legs (node-tcp-proxy dials its backend only at the client’s first byte; a session that never sent one cost it a single socket).',
    '',
    'Idle deadlines: blitz-lb enforces `idle_timeout` with one sweep per service (`src/proxy/idle-sweep.ts`), not the `socket.setTimeout` of the design, because the measurement said so: `socket.setTimeout` on both legs held two Timeouts and two bound callbacks per session (0.26 KiB of JS heap per idle session: 2.96 → 2.70 KiB, `heapUsed` slope over 5,000 sessions) and re-armed a timer on every read and write of both legs, where the sweep costs a flag store per chunk and one visit per session per period (an eighth of the deadline, at most 1 s). A session still ends after at least `idle_timeout` of silence both ways (test/session-cost.test.ts).',
    '',
  );
  return out;
}

/** The targets that ran: plain scenarios, TLS termination, TLS to backends. */
export interface RunTargets {
  plain: string[];
  tls: string[];
  pool: string[];
}

/** The quick mode's only check: every target has every figure it should. */
export function validate(r: Results, targets: RunTargets): string[] {
  const problems: string[] = [];
  for (const t of targets.tls) {
    const hs = r.scenarios['tls-handshake']?.[t];
    const ka = r.scenarios['tls-keep-alive']?.[t];
    if (!hs || !(hs.rps > 0) || !(hs.cpuUs > 0))
      problems.push(`tls-handshake ${t}: no handshakes/s or CPU figure`);
    if (!ka || !(ka.rps > 0) || !(ka.cpuUs > 0))
      problems.push(`tls-keep-alive ${t}: no req/s or CPU figure`);
    if (t.startsWith('blitz-lb') && hs && hs.errors > 0)
      problems.push(`tls-handshake ${t}: ${hs.errors} failed connections`);
  }
  for (const t of targets.pool) {
    const p = r.scenarios['tls-pool']?.[t];
    if (!p || !(p.p50 > 0) || !(p.cpuUs > 0))
      problems.push(`tls-pool ${t}: no latency or CPU figure`);
    if (t.startsWith('blitz-lb') && p && p.errors > 0)
      problems.push(`tls-pool ${t}: ${p.errors} failed connections`);
  }
  for (const t of targets.plain) {
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
