import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startBackends, startLb } from './children.js';
import { onPath } from './load.js';
import { freePort, waitForPort } from './net.js';
import {
  MAX_SESSIONS,
  type Running,
  spawnPeer,
  startNginx,
  stopChild,
  type Target,
  tempDir,
} from './peers.js';
import type { BenchCerts } from './tls-certs.js';

/**
 * The TLS bench's targets. Termination: each serves `certs` to clients and
 * speaks plain TCP to the (plain HTTP) backends. Backend TLS: clients speak
 * plain TCP and each balancer opens verified TLS connections to HTTPS
 * backends. Every peer runs as one process with one thread, as in peers.ts.
 */

function blitz(name: string, service: Record<string, unknown>): Target {
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
            ...service,
          },
        },
      });
      return {
        port: lb.port,
        pid: lb.proc.pid as number,
        poolCounters: async () => (await lb.stats()).pool,
        stop: () => lb.stop(),
      };
    },
  };
}

function haproxyCfg(port: number, bind: string, server: (p: number, i: number) => string) {
  return (backends: number[]): string =>
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
      `  bind 127.0.0.1:${port}${bind}`,
      '  default_backend be',
      'backend be',
      '  balance roundrobin',
      ...backends.map((p, i) => `  ${server(p, i)}`),
      '',
    ].join('\n');
}

function haproxy(
  name: string,
  bind: (c: BenchCerts) => string,
  server: (c: BenchCerts, p: number, i: number) => string,
) {
  return (certs: BenchCerts): Target | null => {
    const bin = onPath('haproxy');
    if (!bin) return null;
    return {
      name,
      start: async (backends) => {
        const port = await freePort();
        const { dir, cleanup } = tempDir();
        const cfg = join(dir, 'haproxy.cfg');
        writeFileSync(cfg, haproxyCfg(port, bind(certs), (p, i) => server(certs, p, i))(backends));
        return spawnPeer(bin, ['-f', cfg, '-db'], port, cleanup);
      },
    };
  };
}

function nginxStream(
  name: string,
  listen: (c: BenchCerts) => string,
  proxy: (c: BenchCerts) => string,
) {
  return (certs: BenchCerts): Target | null => {
    if (!onPath('nginx')) return null;
    return {
      name,
      start: async (backends) => {
        const port = await freePort();
        return startNginx(
          [
            'stream {',
            `  upstream be { ${backends.map((p) => `server 127.0.0.1:${p};`).join(' ')} }`,
            `  server { listen 127.0.0.1:${port}${listen(certs)} proxy_pass be; proxy_connect_timeout 2s; proxy_timeout 10m;${proxy(certs)} }`,
            '}',
          ].join('\n'),
          port,
          true,
        );
      },
    };
  };
}

/** blitz-lb terminating TLS ([services.NAME.tls]), its other settings the defaults. */
export const blitzTls = (c: BenchCerts): Target =>
  blitz('blitz-lb', { tls: { cert: c.cert, key: c.key } });

/** HAProxy `bind … ssl crt FILE`, mode tcp, one thread. */
export const haproxyTls = haproxy(
  'haproxy',
  (c) => ` ssl crt ${c.combined}`,
  (_c, p, i) => `server s${i} 127.0.0.1:${p}`,
);

/** nginx stream `listen … ssl`, one worker. */
export const nginxStreamTls = nginxStream(
  'nginx stream',
  (c) => ` ssl; ssl_certificate ${c.cert}; ssl_certificate_key ${c.key};`,
  () => '',
);

/** blitz-lb with [services.NAME.backend_tls] verifying against the bench CA; pool on (defaults) or off. */
export const blitzBackendTls = (c: BenchCerts, poolOn: boolean): Target =>
  blitz(poolOn ? 'blitz-lb' : 'blitz-lb (pool off)', {
    backend_tls: { ca: c.ca },
    ...(poolOn ? {} : { pool: { min_idle: 0 } }),
  });

/** HAProxy `server … ssl verify required ca-file CA`: a TLS connection per client, sessions resumed. */
export const haproxyBackendTls = haproxy(
  'haproxy',
  () => '',
  (c, p, i) => `server s${i} 127.0.0.1:${p} ssl verify required ca-file ${c.ca}`,
);

/** nginx stream `proxy_ssl on` with verification (proxy_ssl_session_reuse is on by default). */
export const nginxStreamBackendTls = nginxStream(
  'nginx stream',
  () => ';',
  (c) =>
    ` proxy_ssl on; proxy_ssl_verify on; proxy_ssl_trusted_certificate ${c.ca}; proxy_ssl_name localhost;`,
);

/**
 * Three HTTPS backends serving `certs`: nginx (one worker) when installed,
 * as the plain HTTP backends are, else Node HTTPS servers in their own process.
 */
export async function startHttpsBackends(
  certs: BenchCerts,
): Promise<{ kind: string; ports: number[]; stop: () => Promise<void> }> {
  if (onPath('nginx')) {
    const ports = [await freePort(), await freePort(), await freePort()];
    const { dir, cleanup } = tempDir();
    const r: Running = await startNginx(
      [
        'http {',
        '  access_log off;',
        `  client_body_temp_path ${dir}/cb; proxy_temp_path ${dir}/p; fastcgi_temp_path ${dir}/f; uwsgi_temp_path ${dir}/u; scgi_temp_path ${dir}/s;`,
        `  ssl_certificate ${certs.cert}; ssl_certificate_key ${certs.key};`,
        '  keepalive_requests 10000000;',
        '  keepalive_timeout 600s;',
        ...ports.map(
          (p, i) =>
            `  server { listen 127.0.0.1:${p} ssl backlog=4096; location / { return 200 "hello from backend ${i + 1}\\n"; } }`,
        ),
        '}',
      ].join('\n'),
      ports[0] as number,
      false,
    );
    for (const p of ports) await waitForPort(p);
    return {
      kind: 'nginx (1 worker, TLS)',
      ports,
      stop: async () => {
        await r.stop();
        cleanup();
      },
    };
  }
  const { proc, ports } = await startBackends(3, [], { cert: certs.cert, key: certs.key });
  return { kind: 'node:https (1 process)', ports, stop: () => stopChild(proc) };
}
