/**
 * A/B of two builds of blitz-lb on the same machine in the same run: churn
 * or keep-alive load against each in turn (A B A B…), CPU per request from
 * /proc, medians. The way to tell a change from this machine's noise.
 *
 *   git worktree add /tmp/base <rev> && ln -s "$PWD/node_modules" /tmp/base/ &&
 *     (cd /tmp/base && npx tsc -p .)
 *   npm run build && node dist/bench/ab.js --base /tmp/base/dist [--churn|--keep-alive|--bulk]
 *     [--seconds 8] [--rounds 4]
 *
 * --bulk: 1 GiB up and 1 GiB down through one stream each (the bench's bulk peer);
 * CPU ms per GiB and Gbit/s each way.
 *
 * --tls-pool: HTTPS backends, [backend_tls] on; each build with its warm pool
 * on and this build with it off (three arms a round): connect-to-first-byte
 * p50 of one client at a time (the bench's TLS-to-backends row).
 *
 * --idle [--sessions 4000]: KiB of RSS per idle session (the bench's idle row:
 * the slope over sessions opened, each after one exchange). --no-pool turns
 * the warm pool off in every arm; --pool-off-arm adds a third arm, this build
 * with its pool off (what the pool itself costs per session).
 *
 * --tls-handshake: TLS termination ([services.NAME.tls], the bench's ECDSA
 * P-256 certificate), a full handshake per connection (the bench's
 * tls-handshake row): CPU µs per handshake and handshakes/s.
 *
 * --base-node PATH: the base arm runs on that node binary (the same build under
 * two runtimes: --base dist --base-node /usr/bin/node).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { flag, opt } from './lib/args.js';
import { runLoad } from './lib/load.js';
import { startBulkBackend, startHttpBackends } from './lib/peers.js';
import { cpuMs, median } from './lib/proc.js';
import { bulk, idle } from './lib/scenarios.js';
import { makeBenchCerts } from './lib/tls-certs.js';
import { startHttpsBackends } from './lib/tls-peers.js';
import { tlsHandshakes, tlsPool } from './lib/tls-scenarios.js';

const here = dirname(fileURLToPath(import.meta.url));
const base = opt('base', '');
if (!base) {
  process.stderr.write(
    'usage: node dist/bench/ab.js --base DIST [--keep-alive] [--seconds 8] [--rounds 4]\n',
  );
  process.exit(2);
}
const bulkMode = flag('bulk');
const poolMode = flag('tls-pool');
const idleMode = flag('idle');
const noPool = flag('no-pool');
const hsMode = flag('tls-handshake');
/** --pool-off-arm: a third arm, this build with its warm pool off (always on with --tls-pool). */
const poolOffArm = poolMode || flag('pool-off-arm');
const baseNode = opt('base-node', process.execPath);
/** --node-args "FLAGS": node flags for this build's arms only (a runtime lever against the same code). */
const nodeArgs = opt('node-args', '')
  .split(' ')
  .filter((x) => x !== '');
const churn = !bulkMode && !poolMode && !idleMode && !hsMode && !flag('keep-alive');
const seconds = Number(opt('seconds', '8'));
const rounds = Number(opt('rounds', '4'));

const certs = poolMode || hsMode ? makeBenchCerts() : null;
const backends = bulkMode || poolMode ? null : await startHttpBackends();
const bulkPeer = bulkMode ? await startBulkBackend() : null;
const https = certs && poolMode ? await startHttpsBackends(certs) : null;
const backendPorts = bulkPeer ? [bulkPeer.port] : https ? https.ports : (backends?.ports ?? []);
const configOf = (poolOn: boolean) => ({
  log: { level: 'warn' },
  services: {
    bench: {
      listen: '127.0.0.1:0',
      backends: backendPorts.map((p) => `127.0.0.1:${p}`),
      max_connections: 50_000,
      ...(certs && poolMode ? { backend_tls: { ca: certs.ca } } : {}),
      ...(certs && hsMode ? { tls: { cert: certs.cert, key: certs.key } } : {}),
      ...(poolOn && !noPool ? {} : { pool: { min_idle: 0 } }),
    },
  },
});
const builds = [
  {
    name: `base (${base}${baseNode === process.execPath ? '' : ` on ${baseNode}`})`,
    dist: resolve(base),
    config: configOf(true),
    node: baseNode,
    args: [] as string[],
  },
  {
    name: 'this build',
    dist: resolve(here, '..'),
    config: configOf(true),
    node: process.execPath,
    args: nodeArgs,
  },
  ...(poolOffArm
    ? [
        {
          name: 'this build, pool off',
          dist: resolve(here, '..'),
          config: configOf(false),
          node: process.execPath,
          args: nodeArgs,
        },
      ]
    : []),
];
/** Ends one arm's balancer: ab-child closes it when its IPC channel goes. */
async function stopArm(child: ChildProcess): Promise<void> {
  const gone = once(child, 'exit');
  child.disconnect();
  await gone;
}

const cpu = builds.map((): number[] => []);
const rps = builds.map((): number[] => []);
for (let r = 0; r < rounds; r++) {
  for (const [i, b] of builds.entries()) {
    const child = fork(join(here, 'ab-child.js'), [b.dist, JSON.stringify(b.config)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execPath: b.node,
      execArgv: b.args,
    });
    const [{ port }] = (await once(child, 'message')) as [{ port: number }];
    if (bulkMode) {
      const pid = child.pid as number;
      const f = await bulk(
        { port, pid, stop: async () => {} },
        { seconds: 0, bulkBytes: 2 ** 30, idleSessions: 0 },
      );
      cpu[i]?.push(f.cpuUs / 1000);
      rps[i]?.push(((f.gbitUp ?? 0) + (f.gbitDown ?? 0)) / 2);
      await stopArm(child);
      continue;
    }
    if (idleMode) {
      await new Promise((res) => setTimeout(res, 300));
      const f = await idle(
        { port, pid: child.pid as number, stop: async () => {} },
        { seconds: 0, bulkBytes: 0, idleSessions: Number(opt('sessions', '4000')) },
      );
      cpu[i]?.push(f.kibPerSession ?? Number.NaN);
      rps[i]?.push(f.errors);
      await stopArm(child);
      continue;
    }
    if (hsMode) {
      await new Promise((res) => setTimeout(res, 300));
      const f = await tlsHandshakes(
        { port, pid: child.pid as number, stop: async () => {} },
        { seconds, bulkBytes: 0, idleSessions: 0 },
      );
      cpu[i]?.push(f.cpuUs);
      rps[i]?.push(f.rps);
      await stopArm(child);
      continue;
    }
    if (poolMode) {
      // The pool fills in the background: the same settling time as the bench gives.
      await new Promise((res) => setTimeout(res, 300));
      const f = await tlsPool(
        { port, pid: child.pid as number, stop: async () => {} },
        { seconds: 0, bulkBytes: 0, idleSessions: 0, ttfbConnections: 300 },
      );
      cpu[i]?.push(f.p50);
      rps[i]?.push(f.cpuUs);
      await stopArm(child);
      continue;
    }
    const url = `http://127.0.0.1:${port}/`;
    await runLoad({ url, connections: 50, seconds: 2, churn }); // warm-up
    const before = cpuMs(child.pid as number);
    const load = await runLoad({ url, connections: churn ? 50 : 100, seconds, churn });
    cpu[i]?.push(((cpuMs(child.pid as number) - before) * 1000) / load.requests);
    rps[i]?.push(load.rps);
    await stopArm(child);
  }
}
await backends?.stop();
await bulkPeer?.stop();
await https?.stop();
certs?.cleanup();
const [baseCpu, thisCpu] = cpu.map((xs) => median(xs)) as [number, number];
for (const [i, b] of builds.entries())
  process.stdout.write(
    idleMode
      ? `idle ${b.name}: KiB per session ${median(cpu[i] ?? []).toFixed(2)} (rounds ${(cpu[i] ?? []).map((x) => x.toFixed(2)).join(', ')}), errors ${(rps[i] ?? []).join(', ')}\n`
      : poolMode
        ? `tls-pool ${b.name}: connect p50 ms ${median(cpu[i] ?? []).toFixed(2)} (rounds ${(cpu[i] ?? []).map((x) => x.toFixed(2)).join(', ')}), CPU µs/connection ${median(rps[i] ?? []).toFixed(0)}\n`
        : hsMode
          ? `tls-handshake ${b.name}: CPU µs/handshake ${median(cpu[i] ?? []).toFixed(1)} (rounds ${(cpu[i] ?? []).map((x) => x.toFixed(1)).join(', ')}), handshakes/s ${median(rps[i] ?? []).toFixed(0)}\n`
          : bulkMode
            ? `bulk ${b.name}: CPU ms/GiB ${median(cpu[i] ?? []).toFixed(0)} (rounds ${(cpu[i] ?? []).map((x) => x.toFixed(0)).join(', ')}), mean Gbit/s ${median(rps[i] ?? []).toFixed(2)}\n`
            : `${churn ? 'churn' : 'keep-alive'} ${b.name}: CPU µs/req ${median(cpu[i] ?? []).toFixed(1)} (rounds ${(cpu[i] ?? []).map((x) => x.toFixed(1)).join(', ')}), req/s ${median(rps[i] ?? []).toFixed(0)}\n`,
  );
if (poolMode) {
  const off = median(cpu[2] ?? []);
  process.stdout.write(
    `connect p50, pool on / pool off: base ${(baseCpu / off).toFixed(2)}x, this build ${(thisCpu / off).toFixed(2)}x; this build / base ${(thisCpu / baseCpu).toFixed(2)}x\n`,
  );
} else
  process.stdout.write(
    `this build / base, ${idleMode ? 'memory per session' : `CPU per ${bulkMode ? 'GiB' : hsMode ? 'handshake' : 'request'}`}: ${(thisCpu / baseCpu).toFixed(2)}x\n`,
  );
