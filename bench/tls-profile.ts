/**
 * One target under the bench's TLS handshake load (the tls-handshake row),
 * for profiling: CPU µs per handshake and handshakes/s, optionally with
 * `perf record` on the target for the measured seconds. Run it under the
 * load lock:
 *
 *   flock /tmp/blitz-load.lock node dist/bench/tls-profile.js
 *     [--target blitz|haproxy|node] [--seconds 8] [--perf FILE]
 *     [--node-args "--perf-basic-prof --cpu-prof --cpu-prof-dir=DIR"]
 *
 * blitz: this build's balancer with [tls]; haproxy: the bench's peer; node:
 * a bare node:tls proxy (bench/peer-node-tls-proxy.ts), the floor of any
 * proxy on node:tls. --node-args apply to blitz and node.
 */
import { fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { opt } from './lib/args.js';
import { startHttpBackends } from './lib/peers.js';
import { makeBenchCerts } from './lib/tls-certs.js';
import { haproxyTls } from './lib/tls-peers.js';
import { tlsHandshakes } from './lib/tls-scenarios.js';

const here = dirname(fileURLToPath(import.meta.url));
const target = opt('target', 'blitz');
const seconds = Number(opt('seconds', '8'));
const perfFile = opt('perf', '');
const nodeArgs = opt('node-args', '')
  .split(' ')
  .filter((x) => x !== '');

const certs = makeBenchCerts();
const backends = await startHttpBackends();
let child: ReturnType<typeof fork> | null = null;
let port: number;
let pid: number;
let stop = async (): Promise<void> => {};
if (target === 'haproxy') {
  const peer = haproxyTls(certs);
  if (!peer) throw new Error('haproxy is not installed');
  const r = await peer.start(backends.ports);
  ({ port } = r);
  pid = r.pid as number;
  stop = r.stop;
} else {
  const config = {
    log: { level: 'warn' },
    services: {
      bench: {
        listen: '127.0.0.1:0',
        backends: backends.ports.map((p) => `127.0.0.1:${p}`),
        max_connections: 50_000,
        tls: { cert: certs.cert, key: certs.key },
      },
    },
  };
  child =
    target === 'node'
      ? fork(
          join(here, 'peer-node-tls-proxy.js'),
          [certs.cert, certs.key, backends.ports.join(',')],
          { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: nodeArgs },
        )
      : fork(join(here, 'ab-child.js'), [resolveDist(), JSON.stringify(config)], {
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
          execArgv: nodeArgs,
        });
  [{ port }] = (await once(child, 'message')) as [{ port: number }];
  pid = child.pid as number;
}
const running = { port, pid, stop: async () => {} };
const opts = { seconds: 2, bulkBytes: 0, idleSessions: 0 };
await tlsHandshakes(running, opts); // warm-up: JIT, pool
const perf = perfFile
  ? spawn(
      'perf',
      [
        'record',
        '-F',
        '2999',
        '-p',
        String(pid),
        '-o',
        perfFile,
        '--',
        'sleep',
        String(seconds - 0.5),
      ],
      {
        stdio: 'inherit',
      },
    )
  : null;
const f = await tlsHandshakes(running, { ...opts, seconds });
if (perf) await once(perf, 'exit');
process.stdout.write(
  `tls-handshake ${target}: CPU µs/handshake ${f.cpuUs.toFixed(1)}, handshakes/s ${f.rps.toFixed(0)}, errors ${f.errors}\n`,
);
if (child) {
  const gone = once(child, 'exit');
  child.disconnect();
  await gone;
}
await stop();
await backends.stop();
certs.cleanup();

function resolveDist(): string {
  return join(here, '..');
}
