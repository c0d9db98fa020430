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
 */
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runLoad } from './lib/load.js';
import { startBulkBackend, startHttpBackends } from './lib/peers.js';
import { cpuMs, median } from './lib/proc.js';
import { bulk } from './lib/scenarios.js';

const here = dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? (argv[i + 1] ?? dflt) : dflt;
};
const base = opt('base', '');
if (!base) {
  process.stderr.write(
    'usage: node dist/bench/ab.js --base DIST [--keep-alive] [--seconds 8] [--rounds 4]\n',
  );
  process.exit(2);
}
const bulkMode = argv.includes('--bulk');
const churn = !bulkMode && !argv.includes('--keep-alive');
const seconds = Number(opt('seconds', '8'));
const rounds = Number(opt('rounds', '4'));

const backends = bulkMode ? null : await startHttpBackends();
const bulkPeer = bulkMode ? await startBulkBackend() : null;
const backendPorts = bulkPeer ? [bulkPeer.port] : (backends?.ports ?? []);
const config = {
  log: { level: 'warn' },
  services: {
    bench: {
      listen: '127.0.0.1:0',
      backends: backendPorts.map((p) => `127.0.0.1:${p}`),
      max_connections: 50_000,
    },
  },
};
const builds = [
  { name: `base (${base})`, dist: resolve(base) },
  { name: 'this build', dist: resolve(here, '..') },
];
const cpu = builds.map((): number[] => []);
const rps = builds.map((): number[] => []);
for (let r = 0; r < rounds; r++) {
  for (const [i, b] of builds.entries()) {
    const child = fork(join(here, 'ab-child.js'), [b.dist, JSON.stringify(config)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
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
      const gone = once(child, 'exit');
      child.disconnect();
      await gone;
      continue;
    }
    const url = `http://127.0.0.1:${port}/`;
    await runLoad({ url, connections: 50, seconds: 2, churn }); // warm-up
    const before = cpuMs(child.pid as number);
    const load = await runLoad({ url, connections: churn ? 50 : 100, seconds, churn });
    cpu[i]?.push(((cpuMs(child.pid as number) - before) * 1000) / load.requests);
    rps[i]?.push(load.rps);
    const exited = once(child, 'exit');
    child.disconnect();
    await exited;
  }
}
await backends?.stop();
await bulkPeer?.stop();
const [baseCpu, thisCpu] = cpu.map((xs) => median(xs)) as [number, number];
for (const [i, b] of builds.entries())
  process.stdout.write(
    bulkMode
      ? `bulk ${b.name}: CPU ms/GiB ${median(cpu[i] ?? []).toFixed(0)} (rounds ${(cpu[i] ?? []).map((x) => x.toFixed(0)).join(', ')}), mean Gbit/s ${median(rps[i] ?? []).toFixed(2)}\n`
      : `${churn ? 'churn' : 'keep-alive'} ${b.name}: CPU µs/req ${median(cpu[i] ?? []).toFixed(1)} (rounds ${(cpu[i] ?? []).map((x) => x.toFixed(1)).join(', ')}), req/s ${median(rps[i] ?? []).toFixed(0)}\n`,
  );
process.stdout.write(
  `this build / base, CPU per ${bulkMode ? 'GiB' : 'request'}: ${(thisCpu / baseCpu).toFixed(2)}x\n`,
);
