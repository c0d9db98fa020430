import type { TestContext } from 'node:test';
import { type Child, spawnCli, tempConfig } from './cli.js';
import { refusedPort, waitFor } from './servers.js';

export interface RunningCli {
  child: Child;
  file: string;
  /** The first service's listen port. */
  port: number;
  adminPort: number;
  /**
   * GET (or another method) on the admin server; resolves with the parsed JSON, or text for /metrics.
   * Writes carry `content-type: application/json`, which the admin server requires of them.
   */
  admin(path: string, init?: RequestInit): Promise<{ status: number; body: unknown; text: string }>;
  /** Parsed JSON log lines written so far. */
  logs(): Record<string, unknown>[];
}

/**
 * Runs `blitz-lb run` on a TOML file built by `toml(port, adminPort)` (fresh
 * loopback ports) and waits for its "blitz-lb started" line.
 */
export async function runBalancer(
  t: TestContext,
  toml: (port: number, adminPort: number) => string,
): Promise<RunningCli> {
  const port = await refusedPort();
  const adminPort = await refusedPort();
  const file = tempConfig(t, toml(port, adminPort));
  const child = spawnCli(t, ['run', '--config', file]);
  let exited = false;
  void child.exited.then(() => {
    exited = true;
  });
  await waitFor(
    () => child.stdout().includes('"blitz-lb started"') || exited,
    15_000,
    'the balancer to start',
  );
  if (exited) throw new Error(`the balancer exited at start: ${child.stderr()}`);
  const logs = (): Record<string, unknown>[] =>
    child
      .stdout()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return {
    child,
    file,
    port,
    adminPort,
    logs,
    async admin(path, init) {
      const headers = new Headers(init?.headers);
      const write = (init?.method ?? 'GET') !== 'GET';
      if (write && !headers.has('content-type')) headers.set('content-type', 'application/json');
      const res = await fetch(`http://127.0.0.1:${adminPort}${path}`, { ...init, headers });
      const text = await res.text();
      let body: unknown = null;
      try {
        body = JSON.parse(text);
      } catch {}
      return { status: res.status, body, text };
    },
  };
}

/** The value of one Prometheus sample line, e.g. `blitz_lb_workers` or `blitz_lb_accepted_total{service="web"}`. */
export function sample(metrics: string, name: string): number | undefined {
  const line = metrics.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

/**
 * A config for runBalancer: two workers, an admin server, and one service
 * (default "web") in front of `backends`; `lines` go into the service table.
 */
export function twoWorkers(
  backends: string[],
  lines: string[] = [],
  service = 'web',
): (port: number, adminPort: number) => string {
  return (port, adminPort) => `
[process]
workers = 2
shutdown_timeout = "5s"
[admin]
listen = "127.0.0.1:${adminPort}"
[services.${service}]
listen = "127.0.0.1:${port}"
${lines.join('\n')}
backends = [ ${backends.map((b) => `"${b}"`).join(', ')} ]
`;
}
