/**
 * npm run soak [-- --minutes 10]
 *
 * Mixed load (keep-alive and a new connection per request) through blitz-lb
 * in front of three backends, while one backend is killed every 30 s and
 * restarted 5 s later on the same port. Reports sessions served, errors, and
 * whether every error is accounted for by a kill (the sessions open on the
 * killed backend at that moment), with the balancer's RSS and descriptors at
 * start and end. Not part of CI.
 */
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { startBackends, startLb } from './lib/children.js';
import { freePort } from './lib/net.js';

const here = dirname(fileURLToPath(import.meta.url));
const i = process.argv.indexOf('--minutes');
const minutes = i > 0 ? Number(process.argv[i + 1]) : 10;
const seconds = Math.round(minutes * 60);

const ports = [await freePort(), await freePort(), await freePort()];
/** One backend process per port, so one can be killed and restarted on the same port. */
const startBackend = async (port: number): Promise<ChildProcess> =>
  (await startBackends(1, [port])).proc;
const backends = await Promise.all(ports.map(startBackend));

const lb = await startLb({
  log: { level: 'warn' },
  services: {
    bench: {
      listen: '127.0.0.1:0',
      backends: ports.map((p) => `127.0.0.1:${p}`),
      health: { kind: 'tcp', interval: '1s', fall: 1, rise: 2 },
      connect_timeout: '1s',
    },
  },
});
await new Promise((r) => setTimeout(r, 1000));
const start = await lb.stats();
const url = `http://127.0.0.1:${lb.port}/`;
const keepAlive = autocannon({ url, connections: 20, duration: seconds });
const churn = autocannon({
  url,
  connections: 20,
  duration: seconds,
  headers: { connection: 'close' },
});

const kills: { at: number; backend: string; openSessions: number }[] = [];
const t0 = Date.now();
let k = 0;
const killer = setInterval(async () => {
  if (Date.now() - t0 > (seconds - 10) * 1000) return;
  const idx = k++ % 3;
  const stats = await lb.stats();
  const victim = stats.backends[idx];
  kills.push({
    at: Math.round((Date.now() - t0) / 1000),
    backend: victim?.address ?? '?',
    openSessions: victim?.active ?? 0,
  });
  backends[idx]?.kill('SIGKILL');
  setTimeout(async () => {
    backends[idx] = await startBackend(ports[idx] as number);
  }, 5000);
  process.stderr.write(
    `\r${Math.round((Date.now() - t0) / 1000)} s: killed ${victim?.address} (${victim?.active} open)   `,
  );
}, 30_000);

const [ka, ch] = await Promise.all([keepAlive, churn]);
clearInterval(killer);
await new Promise((r) => setTimeout(r, 1000));
const end = await lb.stats();
await lb.stop();
for (const b of backends) b?.kill('SIGKILL');

const errors = ka.errors + ka.timeouts + ka.non2xx + ch.errors + ch.timeouts + ch.non2xx;
// Sessions the balancer saw cut by their backend (a reset or error on that side): only kills do that here.
const cut =
  end.backends.reduce((n, b) => n + b.aborted, 0) -
  start.backends.reduce((n, b) => n + b.aborted, 0);
const result = {
  date: new Date().toISOString(),
  minutes,
  kills: kills.length,
  requests: ka.requests.total + ch.requests.total,
  sessionsServed: end.counters.accepted,
  errors: {
    keepAlive: ka.errors + ka.timeouts,
    churn: ch.errors + ch.timeouts,
    non2xx: ka.non2xx + ch.non2xx,
    total: errors,
  },
  sessionsOpenAtKills: kills.reduce((n, x) => n + x.openSessions, 0),
  sessionsCutByBackend: cut,
  everyErrorAccountedFor: errors <= cut,
  rssMiB: { start: +(start.rss / 2 ** 20).toFixed(1), end: +(end.rss / 2 ** 20).toFixed(1) },
  fds: { start: start.fds, end: end.fds },
};
process.stderr.write('\n');
process.stdout.write(
  [
    `Soak: ${minutes} min, keep-alive + churn (20 connections each), a backend killed every 30 s (${kills.length} kills)`,
    '',
    '| figure | value |',
    '|---|---|',
    `| requests served | ${result.requests} |`,
    `| sessions accepted | ${result.sessionsServed} |`,
    `| errors (connection errors + timeouts + non-2xx) | ${errors} |`,
    `| sessions open on a backend when it was killed (sampled just before each kill) | ${kills.reduce((n, x) => n + x.openSessions, 0)} |`,
    `| sessions cut by their backend (counted by the balancer) | ${cut} |`,
    `| every error accounted for by a kill | ${result.everyErrorAccountedFor ? 'yes' : 'no'} |`,
    `| balancer RSS start → end | ${result.rssMiB.start} → ${result.rssMiB.end} MiB |`,
    `| balancer descriptors start → end | ${result.fds.start} → ${result.fds.end} |`,
    '',
  ].join('\n'),
);
writeFileSync(
  join(here, '..', '..', 'bench', 'results', 'soak.json'),
  `${JSON.stringify(result, null, 2)}\n`,
);
