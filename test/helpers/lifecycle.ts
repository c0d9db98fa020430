import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import type { TestContext } from 'node:test';
import { CLI, tempConfig } from './cli.js';
import { refusedPort, waitFor } from './servers.js';

export interface Balancer {
  proc: ChildProcess;
  file: string;
  port: number;
  adminPort: number;
  exited: Promise<number | null>;
  /** Everything written to stdout: the old process's log and, after an upgrade, the new one's (same pipe). */
  stdout(): string;
  stderr(): string;
  logs(): Record<string, unknown>[];
  admin(path: string, method?: string): Promise<{ status: number; body: Record<string, unknown> }>;
}

/**
 * `blitz-lb run` on a TOML file built from fresh loopback ports, with extra
 * environment; waits for its "blitz-lb started" line. Kills it, and any
 * process it started by upgrading (pids in its log), after the test.
 */
export async function startBalancer(
  t: TestContext,
  toml: (port: number, adminPort: number) => string,
  env: NodeJS.ProcessEnv = {},
  /** Where its log goes ([log] destination): elsewhere than stdout, /livez answering says it started. */
  logTo: 'stdout' | 'stderr' | 'file' | 'syslog' = 'stdout',
): Promise<Balancer> {
  const port = await refusedPort();
  const adminPort = await refusedPort();
  const file = tempConfig(t, toml(port, adminPort));
  const proc = spawn(process.execPath, [CLI, 'run', '--config', file], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let out = '';
  let err = '';
  proc.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  proc.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (c) => resolve(c)));
  const logs = (): Record<string, unknown>[] =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  t.after(() => {
    for (const l of logs()) {
      if (typeof l.newPid !== 'number') continue;
      try {
        process.kill(l.newPid, 'SIGKILL');
      } catch {}
    }
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  let live = false;
  const started = (): boolean => {
    if (logTo === 'stdout') return out.includes('"blitz-lb started"');
    if (logTo === 'stderr') return err.includes('"blitz-lb started"');
    fetch(`http://127.0.0.1:${adminPort}/livez`).then(
      (r) => {
        live = r.ok;
      },
      () => {},
    );
    return live;
  };
  await waitFor(() => started() || gone, 15_000, 'the balancer to start');
  if (gone) throw new Error(`the balancer exited at start: ${err}`);
  return {
    proc,
    file,
    port,
    adminPort,
    exited,
    stdout: () => out,
    stderr: () => err,
    logs,
    async admin(path, method = 'GET') {
      const res = await fetch(`http://127.0.0.1:${adminPort}${path}`, {
        method,
        headers: method === 'GET' ? {} : { 'content-type': 'application/json' },
      });
      const text = await res.text();
      return { status: res.status, body: JSON.parse(text) as Record<string, unknown> };
    },
  };
}

/** One short connection through an echo backend: connect, send, read the echo, close. */
function oneShort(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = connect({ port, host: '127.0.0.1' });
    let got = '';
    c.on('error', reject);
    c.on('connect', () => c.write('ping'));
    c.on('data', (d: Buffer) => {
      got += d.toString();
      if (got === 'ping') c.end();
    });
    c.on('close', () => (got === 'ping' ? resolve() : reject(new Error(`got "${got}"`))));
  });
}

export interface Churn {
  readonly ok: number;
  readonly failed: string[];
  /** Stops the loops; resolves once every connection in flight has ended. */
  stop(): Promise<void>;
}

/** `loops` concurrent loops of short connections (an echo backend behind `port`), until stopped. */
export function churn(t: TestContext, port: number, loops = 4): Churn {
  let running = true;
  t.after(() => {
    running = false;
  });
  const state = { ok: 0, failed: [] as string[] };
  const loop = async (): Promise<void> => {
    while (running) {
      try {
        await oneShort(port);
        state.ok++;
      } catch (err) {
        state.failed.push((err as Error).message);
      }
    }
  };
  const all = Array.from({ length: loops }, loop);
  return {
    get ok() {
      return state.ok;
    },
    get failed() {
      return state.failed;
    },
    async stop() {
      running = false;
      await Promise.all(all);
    },
  };
}

/** A long-lived connection through an echo backend: `ping` sends and awaits its echo. */
export async function longConnection(
  port: number,
): Promise<{ socket: Socket; ping(text: string): Promise<string> }> {
  const socket = connect({ port, host: '127.0.0.1' });
  socket.on('error', () => {});
  await once(socket, 'connect');
  return {
    socket,
    ping(text) {
      return new Promise((resolve, reject) => {
        let got = '';
        const onData = (d: Buffer): void => {
          got += d.toString();
          if (got.length >= text.length) {
            socket.off('data', onData);
            resolve(got);
          }
        };
        socket.on('data', onData);
        socket.once('close', () => reject(new Error('closed')));
        socket.write(text);
      });
    },
  };
}

/** A [services.web] config in front of `backend`, with an admin server; `proc` lines go into [process]. */
export function upgradeConfig(backend: number, proc = ''): (port: number, admin: number) => string {
  return (port, admin) => `[process]
shutdown_timeout = "20s"
${proc}
[admin]
listen = "127.0.0.1:${admin}"
[services.web]
listen = "127.0.0.1:${port}"
backends = ["127.0.0.1:${backend}"]
[services.web.health]
kind = "none"
[services.web.pool]
min_idle = 0
`;
}
