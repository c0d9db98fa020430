/**
 * What the warm pool saves when the backend is a round trip away: connect to
 * first byte, one client at a time, direct / blitz-lb with the pool off / on
 * (defaults) / HAProxy (mode tcp). The backend runs in a network namespace
 * of this bench's own, behind a veth pair, and answers as if it were RTT
 * away (see rtt-backend.ts: no netem in this kernel). Needs root and iproute2;
 * the namespace is removed at the end. Run under the machine's load lock:
 *
 *   npm run -s build && flock /tmp/blitz-load.lock node dist/bench/pool-rtt.js [--rtt 20] [--connections 100] [--gap 60]
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLb } from './lib/children.js';
import { onPath } from './lib/load.js';
import { freePort, waitForPort } from './lib/net.js';
import { stopChild, tempDir } from './lib/peers.js';

const here = dirname(fileURLToPath(import.meta.url));
const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const rtt = arg('rtt', 20);
const connections = arg('connections', 100);
const gap = arg('gap', 3 * rtt);

// RFC 2544's benchmarking range: never a real network's.
const HOST_IP = '198.18.213.1';
const FAR_IP = '198.18.213.2';
const tag = String(process.pid % 100_000);
const ns = `blitz-rtt-${tag}`;
const vethHost = `brtt${tag}h`;
const vethFar = `brtt${tag}n`;
const ip = (...args: string[]): void => {
  execFileSync('ip', args, { stdio: 'inherit' });
};

function setUp(): void {
  ip('netns', 'add', ns);
  ip('link', 'add', vethHost, 'type', 'veth', 'peer', 'name', vethFar);
  ip('link', 'set', vethFar, 'netns', ns);
  ip('addr', 'add', `${HOST_IP}/30`, 'dev', vethHost);
  ip('link', 'set', vethHost, 'up');
  ip('-n', ns, 'addr', 'add', `${FAR_IP}/30`, 'dev', vethFar);
  ip('-n', ns, 'link', 'set', vethFar, 'up');
  ip('-n', ns, 'link', 'set', 'lo', 'up');
}

function tearDown(): void {
  try {
    execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  } catch {
    // not there
  }
  try {
    // Deleted with the namespace's end of the pair; this catches a half-made setup.
    execFileSync('ip', ['link', 'del', vethHost], { stdio: 'ignore' });
  } catch {
    // gone
  }
}

/** Connect to first echoed byte, `connections` times, one after another `gap` ms apart (ms each). */
async function measure(port: number, host: string): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < connections; i++) {
    const t0 = process.hrtime.bigint();
    const c = connect({ port, host, noDelay: true });
    c.on('error', () => {});
    c.write('ping\n');
    const [d] = (await Promise.race([
      once(c, 'data'),
      new Promise((_, reject) => setTimeout(() => reject(new Error('no reply in 5 s')), 5000)),
    ])) as [Buffer];
    if (d.length === 0) throw new Error('empty reply');
    out.push(Number(process.hrtime.bigint() - t0) / 1e6);
    c.destroy();
    await new Promise((r) => setTimeout(r, gap));
  }
  return out;
}

const q = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))] as number;
};

async function haproxy(
  farPort: number,
): Promise<{ port: number; stop: () => Promise<void> } | null> {
  const bin = onPath('haproxy');
  if (!bin) return null;
  const port = await freePort();
  const { dir, cleanup } = tempDir();
  const cfg = join(dir, 'haproxy.cfg');
  writeFileSync(
    cfg,
    [
      'global',
      '  nbthread 1',
      'defaults',
      '  mode tcp',
      '  timeout connect 2s',
      '  timeout client 1m',
      '  timeout server 1m',
      'frontend fe',
      `  bind 127.0.0.1:${port}`,
      '  default_backend be',
      'backend be',
      `  server far ${FAR_IP}:${farPort}`,
      '',
    ].join('\n'),
  );
  const proc = spawn(bin, ['-f', cfg, '-db'], { stdio: 'ignore' });
  await waitForPort(port);
  return {
    port,
    stop: async () => {
      await stopChild(proc);
      cleanup();
    },
  };
}

let backend: ChildProcess | null = null;
process.on('SIGINT', () => {
  if (backend) backend.kill('SIGKILL');
  tearDown();
  process.exit(130);
});

const rows: { target: string; p50: number; p90: number; p99: number; hits?: number }[] = [];
try {
  setUp();
  const farPort = 9000;
  backend = spawn(
    'ip',
    [
      'netns',
      'exec',
      ns,
      process.execPath,
      join(here, 'rtt-backend.js'),
      FAR_IP,
      String(farPort),
      String(rtt),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await once(backend.stdout as NodeJS.ReadableStream, 'data');

  rows.push({ target: 'direct (no balancer)', ...summary(await measure(farPort, FAR_IP)) });
  for (const [name, pool] of [
    ['blitz-lb, pool off (min_idle = 0)', { min_idle: 0 }],
    ['blitz-lb, pool on (defaults)', {}],
  ] as const) {
    const lb = await startLb({
      log: { level: 'warn' },
      services: { bench: { listen: '127.0.0.1:0', backends: [`${FAR_IP}:${farPort}`], pool } },
    });
    // The pool fills (and its sockets pass their emulated handshake) before the clock starts.
    await new Promise((r) => setTimeout(r, 300 + 2 * rtt));
    const ms = await measure(lb.port, '127.0.0.1');
    const stats = await lb.stats();
    rows.push({ target: name, ...summary(ms), hits: stats.pool.hits });
    await lb.stop();
  }
  const hp = await haproxy(farPort);
  if (hp) {
    rows.push({ target: 'HAProxy (mode tcp)', ...summary(await measure(hp.port, '127.0.0.1')) });
    await hp.stop();
  }
} finally {
  if (backend) backend.kill('SIGKILL');
  tearDown();
}

function summary(ms: number[]): { p50: number; p90: number; p99: number } {
  return { p50: q(ms, 0.5), p90: q(ms, 0.9), p99: q(ms, 0.99) };
}

console.log(
  `\nconnect to first byte, backend ${rtt} ms away (emulated; network namespace + veth), ${connections} connections one at a time, ${gap} ms apart\n`,
);
console.log('| target | p50 | p90 | p99 | pool hits |');
console.log('|---|---|---|---|---|');
for (const r of rows)
  console.log(
    `| ${r.target} | ${r.p50.toFixed(1)} ms | ${r.p90.toFixed(1)} ms | ${r.p99.toFixed(1)} ms | ${r.hits ?? ''} |`,
  );
const record = { date: new Date().toISOString(), rttMs: rtt, connections, gapMs: gap, rows };
writeFileSync(
  join(here, '..', '..', 'bench', 'results', 'pool-rtt.json'),
  `${JSON.stringify(record, null, 2)}\n`,
);
console.log(JSON.stringify(record));
