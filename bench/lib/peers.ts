import { type ChildProcess, fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBackends, startLb } from './children.js';
import { onPath } from './load.js';
import { freePort, waitForPort } from './net.js';

const here = dirname(fileURLToPath(import.meta.url));

/** A balancer (or none) under test, running in its own process. */
export interface Running {
  port: number;
  /** The process whose CPU and memory are measured; null for `direct`. */
  pid: number | null;
  /** blitz-lb only: its warm pool's takes so far (hits: a warm socket, misses: a fresh dial). */
  poolCounters?: () => Promise<{ hits: number; misses: number }>;
  stop(): Promise<void>;
}

export interface Target {
  name: string;
  start(backends: number[]): Promise<Running>;
}

/** Most sessions a balancer can hold here: the hard descriptor limit is 20,000 and each session costs two. */
const MAX_SESSIONS = 9_900;

export async function stopChild(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = once(proc, 'exit');
  proc.kill('SIGKILL');
  await exited;
}

export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'blitz-bench-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export const direct: Target = {
  name: 'direct',
  start: async (backends) => ({ port: backends[0] as number, pid: null, stop: async () => {} }),
};

function blitz(name: string, pool: Record<string, unknown>): Target {
  return {
    name,
    start: async (backends) => {
      const lb = await startLb({
        log: { level: 'warn' },
        services: {
          bench: {
            listen: '127.0.0.1:0',
            backends: backends.map((p) => `127.0.0.1:${p}`),
            max_connections: 50_000,
            pool,
          },
        },
      });
      return { port: lb.port, pid: lb.proc.pid as number, stop: () => lb.stop() };
    },
  };
}

export const blitzDefault = blitz('blitz-lb', {});
export const blitzNoPool = blitz('blitz-lb (pool off)', { min_idle: 0 });

export const nodeTcpProxy: Target = {
  name: 'node-tcp-proxy',
  start: async (backends) => {
    const port = await freePort();
    const proc = fork(
      join(here, '..', 'peer-node-tcp-proxy.js'),
      [String(port), backends.map(() => '127.0.0.1').join(','), backends.join(',')],
      { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] },
    );
    await waitForPort(port);
    return { port, pid: proc.pid as number, stop: () => stopChild(proc) };
  },
};

export function haproxy(): Target | null {
  const bin = onPath('haproxy');
  if (!bin) return null;
  return {
    name: 'haproxy',
    start: async (backends) => {
      const port = await freePort();
      const { dir, cleanup } = tempDir();
      const cfg = join(dir, 'haproxy.cfg');
      writeFileSync(
        cfg,
        [
          'global',
          '  nbthread 1',
          `  maxconn ${MAX_SESSIONS}`,
          'defaults',
          '  mode tcp',
          '  timeout connect 2s',
          '  timeout client 10m',
          '  timeout server 10m',
          'frontend fe',
          `  bind 127.0.0.1:${port}`,
          '  default_backend be',
          'backend be',
          '  balance roundrobin',
          ...backends.map((p, i) => `  server s${i} 127.0.0.1:${p}`),
          '',
        ].join('\n'),
      );
      return spawnPeer(bin, ['-f', cfg, '-db'], port, cleanup);
    },
  };
}

const NGINX_STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so';

/** Starts nginx in the foreground as a single process (no master), so its pid is the one that works. */
export async function startNginx(
  body: string,
  port: number,
  withStream: boolean,
): Promise<Running> {
  const bin = onPath('nginx') as string;
  const { dir, cleanup } = tempDir();
  const cfg = join(dir, 'nginx.conf');
  writeFileSync(
    cfg,
    [
      withStream ? `load_module ${NGINX_STREAM_MODULE};` : '',
      'daemon off;',
      'master_process off;',
      'worker_processes 1;',
      'worker_rlimit_nofile 20000;',
      `error_log ${dir}/error.log error;`,
      `pid ${dir}/nginx.pid;`,
      'events { worker_connections 19000; }',
      body,
    ].join('\n'),
  );
  return spawnPeer(bin, ['-c', cfg, '-p', dir], port, cleanup);
}

/** Runs a peer binary in the foreground until it listens on `port`; stopping it removes its temp dir. */
export async function spawnPeer(
  bin: string,
  args: string[],
  port: number,
  cleanup: () => void,
): Promise<Running> {
  const proc = spawn(bin, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitForPort(port);
  return {
    port,
    pid: proc.pid as number,
    stop: async () => {
      await stopChild(proc);
      cleanup();
    },
  };
}

export function nginxStream(): Target | null {
  if (!onPath('nginx')) return null;
  return {
    name: 'nginx stream',
    start: async (backends) => {
      const port = await freePort();
      return startNginx(
        [
          'stream {',
          `  upstream be { ${backends.map((p) => `server 127.0.0.1:${p};`).join(' ')} }`,
          `  server { listen 127.0.0.1:${port}; proxy_pass be; proxy_connect_timeout 2s; proxy_timeout 10m; }`,
          '}',
        ].join('\n'),
        port,
        true,
      );
    },
  };
}

/**
 * Three HTTP backends: nginx (one worker) when installed, fast enough not to
 * be the bottleneck; otherwise Node HTTP servers in their own process.
 */
export async function startHttpBackends(): Promise<{
  kind: string;
  ports: number[];
  stop: () => Promise<void>;
}> {
  if (onPath('nginx')) {
    const ports = [await freePort(), await freePort(), await freePort()];
    const { dir, cleanup } = tempDir();
    const r = await startNginx(
      [
        'http {',
        '  access_log off;',
        `  client_body_temp_path ${dir}/cb; proxy_temp_path ${dir}/p; fastcgi_temp_path ${dir}/f; uwsgi_temp_path ${dir}/u; scgi_temp_path ${dir}/s;`,
        '  keepalive_requests 10000000;',
        '  keepalive_timeout 600s;',
        ...ports.map(
          (p, i) =>
            `  server { listen 127.0.0.1:${p} backlog=4096; location / { return 200 "hello from backend ${i + 1}\\n"; } }`,
        ),
        '}',
      ].join('\n'),
      ports[0] as number,
      false,
    );
    for (const p of ports) await waitForPort(p);
    return {
      kind: 'nginx (1 worker)',
      ports,
      stop: async () => {
        await r.stop();
        cleanup();
      },
    };
  }
  const { proc, ports } = await startBackends(3);
  return { kind: 'node:http (1 process)', ports, stop: () => stopChild(proc) };
}

/** The bulk-transfer peer (bench/bulk-server.ts) in its own process. */
export async function startBulkBackend(): Promise<{ port: number; stop: () => Promise<void> }> {
  const proc = fork(join(here, '..', 'bulk-server.js'), [], {
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  const [line] = (await once(proc.stdout as NodeJS.ReadableStream, 'data')) as [Buffer];
  return {
    port: (JSON.parse(line.toString()) as { port: number }).port,
    stop: () => stopChild(proc),
  };
}

export { MAX_SESSIONS };
