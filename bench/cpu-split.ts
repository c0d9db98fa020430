/**
 * Where a target's CPU per request goes: user against system time (from
 * /proc/PID/stat), and with --strace the syscalls per request, for blitz-lb,
 * the Node peer and HAProxy under one load, interleaved rounds, medians. The
 * measured reasons behind the goals of bench/goals.ts that stay missed
 * (docs/performance.md "Why a goal is missed"). Run it under the load lock:
 *
 *   flock /tmp/blitz-load.lock node dist/bench/cpu-split.js
 *     [--scenario churn|keep-alive|tls-keep-alive] [--seconds 6] [--rounds 3] [--strace]
 *
 * churn: wrk, 50 connections, a new connection per request; keep-alive: wrk,
 * 100 connections; tls-keep-alive: wrk over https, 100 connections, the Node
 * peer then a bare node:tls proxy (bench/peer-node-tls-proxy.ts). Needs wrk,
 * and haproxy for its row; --strace needs strace (its own cost inflates the
 * times of that round, so it runs as one extra round, apart from the medians).
 */
import { execFileSync, fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { flag, opt } from './lib/args.js';
import {
  blitzDefault,
  haproxy,
  nodeTcpProxy,
  type Running,
  startHttpBackends,
  type Target,
  tempDir,
} from './lib/peers.js';
import { median, statFields } from './lib/proc.js';
import { makeBenchCerts } from './lib/tls-certs.js';
import { blitzTls, haproxyTls } from './lib/tls-peers.js';

const here = dirname(fileURLToPath(import.meta.url));
const scenario = opt('scenario', 'churn');
if (!['churn', 'keep-alive', 'tls-keep-alive'].includes(scenario)) {
  process.stderr.write(
    `cpu-split: --scenario is churn, keep-alive or tls-keep-alive, not ${scenario}\n`,
  );
  process.exit(2);
}
const seconds = Number(opt('seconds', '6'));
const rounds = Number(opt('rounds', '3'));
const withStrace = flag('strace');
const CLK_TCK = 100;

const tls = scenario === 'tls-keep-alive';
const certs = tls ? makeBenchCerts() : null;

/** The bare node:tls proxy, the floor of any TLS-terminating proxy on Node. */
const nodeTlsProxy: Target = {
  name: 'node tls proxy',
  start: async (backends) => {
    const c = certs as NonNullable<typeof certs>;
    const child = fork(join(here, 'peer-node-tls-proxy.js'), [c.cert, c.key, backends.join(',')], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const [{ port }] = (await once(child, 'message')) as [{ port: number }];
    return {
      port,
      pid: child.pid as number,
      stop: async () => {
        const gone = once(child, 'exit');
        child.kill('SIGKILL');
        await gone;
      },
    };
  },
};

const targets = (
  certs
    ? [blitzTls(certs), nodeTlsProxy, haproxyTls(certs)]
    : [blitzDefault, nodeTcpProxy, haproxy()]
).filter((t): t is Target => t !== null);

function wrk(port: number, secs: number, connections: number): number {
  const args = [
    '-t1',
    `-c${connections}`,
    `-d${secs}s`,
    ...(scenario === 'churn' ? ['-H', 'Connection: close'] : []),
    `${tls ? 'https' : 'http'}://127.0.0.1:${port}/`,
  ];
  const out = execFileSync('wrk', args).toString();
  const m = /(\d+) requests in/.exec(out);
  if (!m) throw new Error(`wrk said no request count:\n${out}`);
  return Number(m[1]);
}

/** [user, system] CPU in µs of the process so far. */
function cpuUs(pid: number): [number, number] {
  const f = statFields(pid);
  return [(Number(f[11]) * 1e6) / CLK_TCK, (Number(f[12]) * 1e6) / CLK_TCK];
}

/** Syscalls per request under the load, by name, from `strace -c -f` on the target. */
async function syscalls(r: Running, connections: number): Promise<[string, number][]> {
  const { dir, cleanup } = tempDir();
  const out = join(dir, 'strace.txt');
  const st = spawn('strace', ['-c', '-f', '-o', out, '-p', String(r.pid)], { stdio: 'ignore' });
  // strace attaches before the load starts: its first lines are its own.
  await new Promise((res) => setTimeout(res, 500));
  const n = wrk(r.port, Math.min(seconds, 4), connections);
  st.kill('SIGINT');
  await once(st, 'exit');
  const rows = readFileSync(out, 'utf8')
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    // "% time  seconds  usecs/call  calls  [errors]  syscall"; the "total" row is left out.
    .filter((f) => f.length >= 5 && /^[\d.]+$/.test(f[0] ?? '') && f[f.length - 1] !== 'total')
    .map((f): [string, number] => [f[f.length - 1] as string, Number(f[3]) / n]);
  cleanup();
  return rows.sort((a, b) => b[1] - a[1]);
}

const backends = await startHttpBackends();
const connections = scenario === 'churn' ? 50 : 100;
const user = targets.map((): number[] => []);
const sys = targets.map((): number[] => []);
const calls: ([string, number][] | null)[] = targets.map(() => null);
for (let round = 0; round < rounds + (withStrace ? 1 : 0); round++) {
  for (const [i, t] of targets.entries()) {
    const r = await t.start(backends.ports);
    const pid = r.pid as number;
    wrk(r.port, 2, connections); // warm-up: JIT, pools
    if (round === rounds) calls[i] = await syscalls(r, connections);
    else {
      const [u0, s0] = cpuUs(pid);
      const n = wrk(r.port, seconds, connections);
      const [u1, s1] = cpuUs(pid);
      user[i]?.push((u1 - u0) / n);
      sys[i]?.push((s1 - s0) / n);
    }
    await r.stop();
  }
}
await backends.stop();
certs?.cleanup();

const unit = scenario === 'churn' ? 'connection' : 'request';
process.stdout.write(
  `${scenario}: CPU µs per ${unit}, ${rounds} interleaved rounds of ${seconds} s, medians\n`,
);
for (const [i, t] of targets.entries()) {
  const u = median(user[i] ?? []);
  const s = median(sys[i] ?? []);
  process.stdout.write(
    `${t.name}: user ${u.toFixed(1)}, system ${s.toFixed(1)}, total ${(u + s).toFixed(1)} (rounds ${(user[i] ?? []).map((x, k) => `${x.toFixed(0)}+${(sys[i]?.[k] ?? 0).toFixed(0)}`).join(', ')})\n`,
  );
  const c = calls[i];
  if (c)
    process.stdout.write(
      `  syscalls per ${unit}: ${c.reduce((a, [, x]) => a + x, 0).toFixed(1)}: ${c
        .filter(([, x]) => x >= 0.05)
        .map(([name, x]) => `${name} ${x.toFixed(2)}`)
        .join(', ')}\n`,
    );
}
