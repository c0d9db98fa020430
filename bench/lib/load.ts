import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import autocannon from 'autocannon';

export interface LoadResult {
  tool: 'autocannon' | 'wrk';
  rps: number;
  requests: number;
  /** Milliseconds; NaN where the tool cannot measure it honestly. */
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

export interface LoadSpec {
  url: string;
  connections: number;
  seconds: number;
  /** A new connection per request (Connection: close). */
  churn: boolean;
  /** Keep-alive on wrk too (its one C thread leaves more CPU to a multi-process balancer). */
  wrk?: boolean;
}

export function onPath(cmd: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    try {
      accessSync(`${dir}/${cmd}`, constants.X_OK);
      return `${dir}/${cmd}`;
    } catch {
      // not here
    }
  }
  return null;
}

/**
 * Keep-alive load always runs on autocannon. Churn load runs on wrk when it
 * is installed: autocannon's latency figures are wrong under Connection:
 * close (measured here: one connection, 3,682 req/s, yet a "p50" of 574 ms),
 * so with autocannon churn latency is reported as NaN and only req/s counts.
 */
export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const wrk = spec.churn || spec.wrk ? onPath('wrk') : null;
  if (wrk) return runWrk(wrk, spec);
  const r = await autocannon({
    url: spec.url,
    connections: spec.connections,
    duration: spec.seconds,
    headers: spec.churn ? { connection: 'close' } : {},
  });
  return {
    tool: 'autocannon',
    rps: r.requests.average,
    requests: r.requests.total,
    p50: spec.churn ? Number.NaN : r.latency.p50,
    p99: spec.churn ? Number.NaN : r.latency.p99,
    errors: r.errors + r.timeouts,
    non2xx: r.non2xx,
  };
}

function runWrk(wrk: string, spec: LoadSpec): Promise<LoadResult> {
  const args = [
    '-t1',
    `-c${spec.connections}`,
    `-d${spec.seconds}s`,
    '--latency',
    ...(spec.churn ? ['-H', 'Connection: close'] : []),
    spec.url,
  ];
  return new Promise((resolve, reject) => {
    execFile(wrk, args, { timeout: (spec.seconds + 30) * 1000 }, (err, stdout) => {
      if (err) {
        reject(err);
        return;
      }
      const ms = (label: string): number => {
        const m = new RegExp(`^\\s+${label}\\s+([\\d.]+)(us|ms|s)`, 'm').exec(stdout);
        if (!m) return Number.NaN;
        const v = Number(m[1]);
        return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
      };
      const num = (re: RegExp): number => Number(re.exec(stdout)?.[1] ?? 0);
      const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(
        stdout,
      );
      const requests = num(/(\d+) requests in/);
      resolve({
        tool: 'wrk',
        rps: num(/Requests\/sec:\s+([\d.]+)/),
        requests,
        p50: ms('50%'),
        p99: ms('99%'),
        // wrk counts the server's close after each response as a read error under churn; connect and
        // timeout are real, and with keep-alive so are read and write errors.
        errors: sock
          ? Number(sock[1]) + Number(sock[4]) + (spec.churn ? 0 : Number(sock[2]) + Number(sock[3]))
          : 0,
        non2xx: num(/Non-2xx or 3xx responses: (\d+)/),
      });
    });
  });
}
