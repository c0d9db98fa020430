import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { runLoad } from './load.js';
import type { Running } from './peers.js';
import { cpuMs, rssKb } from './proc.js';

/** One target's figures in one scenario run; NaN where a figure does not apply. */
export interface Figures {
  /** Requests (or, for bulk, Gbit/s; for idle, sessions) per second. */
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  /** Balancer CPU per request (µs); per GiB for bulk; NaN for direct. */
  cpuUs: number;
  /** Peak RSS of the balancer (MiB). */
  peakRssMiB: number;
  /** Bulk: Gbit/s upload and download. */
  gbitUp?: number;
  gbitDown?: number;
  /** Idle: KiB of balancer RSS per open session. */
  kibPerSession?: number;
  /** TLS: the load generator's CPU, % of one core (near 100: it, not the target, was the limit). */
  loadCpuPct?: number;
  /** TLS to backends, blitz-lb: % of client connections served by a warm (handshaken) socket. */
  poolHitPct?: number;
  tool?: string;
}

export interface ScenarioOpts {
  seconds: number;
  bulkBytes: number;
  idleSessions: number;
  /** TLS to backends: new client connections measured one at a time. */
  ttfbConnections?: number;
}

export function measure<T>(
  r: Running,
  work: () => Promise<T>,
): Promise<{ out: T; cpu: number; peak: number }> {
  const cpu0 = r.pid ? cpuMs(r.pid) : 0;
  return work().then((out) => ({
    out,
    cpu: r.pid ? cpuMs(r.pid) - cpu0 : Number.NaN,
    peak: r.pid ? rssKb(r.pid).peak / 1024 : Number.NaN,
  }));
}

export async function httpLoad(r: Running, opts: ScenarioOpts, churn: boolean): Promise<Figures> {
  const connections = churn ? 50 : 100;
  const { out, cpu, peak } = await measure(r, () =>
    runLoad({ url: `http://127.0.0.1:${r.port}/`, connections, seconds: opts.seconds, churn }),
  );
  return {
    rps: out.rps,
    p50: out.p50,
    p99: out.p99,
    errors: out.errors + out.non2xx,
    cpuUs: out.requests > 0 ? (cpu * 1000) / out.requests : Number.NaN,
    peakRssMiB: peak,
    tool: out.tool,
  };
}

const BLOCK = Buffer.alloc(1 << 20, 0x62);

async function open(port: number): Promise<Socket> {
  const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  await once(s, 'connect');
  return s;
}

/** Streams `bytes` to the bulk peer through the target; resolves with seconds taken. */
async function upload(port: number, bytes: number): Promise<number> {
  const s = await open(port);
  const start = performance.now();
  const reply: Buffer[] = [];
  s.on('data', (d: Buffer) => reply.push(d));
  const ended = once(s, 'end');
  const cmd = Buffer.alloc(9);
  cmd[0] = 0x55;
  cmd.writeBigUInt64BE(BigInt(bytes), 1);
  s.write(cmd);
  let left = bytes;
  while (left > 0) {
    const n = Math.min(left, BLOCK.length);
    left -= n;
    if (!s.write(n === BLOCK.length ? BLOCK : BLOCK.subarray(0, n))) await once(s, 'drain');
  }
  await ended;
  const secs = (performance.now() - start) / 1000;
  s.destroy();
  const got = Number(Buffer.concat(reply).readBigUInt64BE(0));
  if (got !== bytes) throw new Error(`bulk upload: the peer got ${got} of ${bytes} bytes`);
  return secs;
}

async function download(port: number, bytes: number): Promise<number> {
  const s = await open(port);
  const start = performance.now();
  let got = 0;
  s.on('data', (d: Buffer) => {
    got += d.length;
  });
  const ended = once(s, 'end');
  const cmd = Buffer.alloc(9);
  cmd[0] = 0x44;
  cmd.writeBigUInt64BE(BigInt(bytes), 1);
  s.write(cmd);
  await ended;
  const secs = (performance.now() - start) / 1000;
  s.destroy();
  if (got !== bytes) throw new Error(`bulk download: got ${got} of ${bytes} bytes`);
  return secs;
}

/** A transfer that failed (truncated, reset) counts as an error and leaves that direction's figure empty. */
async function attempt(run: () => Promise<number>, onError: () => void): Promise<number> {
  try {
    return await run();
  } catch {
    onError();
    return Number.NaN;
  }
}

export async function bulk(r: Running, opts: ScenarioOpts): Promise<Figures> {
  let errors = 0;
  const failed = (): void => {
    errors++;
  };
  const { out, cpu, peak } = await measure(r, async () => ({
    up: await attempt(() => upload(r.port, opts.bulkBytes), failed),
    down: await attempt(() => download(r.port, opts.bulkBytes), failed),
  }));
  const gbit = (secs: number): number => (opts.bulkBytes * 8) / secs / 1e9;
  const gib = (2 * opts.bulkBytes) / 2 ** 30;
  return {
    rps: Number.NaN,
    p50: Number.NaN,
    p99: Number.NaN,
    errors,
    cpuUs: errors > 0 ? Number.NaN : (cpu * 1000) / gib,
    peakRssMiB: peak,
    gbitUp: gbit(out.up),
    gbitDown: gbit(out.down),
  };
}

/**
 * One request and its reply on a new connection, which then stays open idle:
 * an idle session as a pooled database or keep-alive HTTP client leaves one.
 * A session that never sent a byte would favour a proxy that dials its backend
 * only at the client's first byte (node-tcp-proxy does; HAProxy, nginx and
 * blitz-lb dial at accept, as server-first protocols need) by one socket.
 */
async function openExchanged(port: number): Promise<Socket> {
  const s = await open(port);
  const reply = new Promise<void>((resolve, reject) => {
    s.once('data', () => resolve());
    // Refused (a limit, descriptors): closed with no reply; counted as an error, never awaited forever.
    s.once('close', () => reject(new Error('closed before the reply')));
    s.once('error', reject);
    setTimeout(() => reject(new Error('no reply within 10 s')), 10_000).unref();
  });
  s.write('GET / HTTP/1.1\r\nHost: bench\r\n\r\n');
  try {
    await reply;
  } catch (err) {
    s.destroy();
    throw err;
  }
  return s;
}

/**
 * Opens `n` idle sessions through the target (each after one exchange, see
 * openExchanged), in four steps, and reads the balancer's RSS after each
 * (settled): the memory per session is the least-squares slope of RSS over
 * sessions open. Whatever the balancer holds regardless of sessions (the warm
 * pool's idle sockets, code, buffers) is in the intercept, not the slope.
 */
export async function idle(r: Running, opts: ScenarioOpts): Promise<Figures> {
  if (!r.pid)
    return {
      rps: Number.NaN,
      p50: Number.NaN,
      p99: Number.NaN,
      errors: 0,
      cpuUs: Number.NaN,
      peakRssMiB: Number.NaN,
    };
  const settle = (ms: number) => new Promise((res) => setTimeout(res, ms));
  const points: [number, number][] = [[0, rssKb(r.pid).rss]];
  const socks: Socket[] = [];
  let errors = 0;
  const batch = 200;
  const steps = 4;
  for (let step = 1; step <= steps; step++) {
    const goal = Math.round((opts.idleSessions * step) / steps);
    while (socks.length + errors < goal) {
      const opened = await Promise.allSettled(
        Array.from({ length: Math.min(batch, goal - socks.length - errors) }, () =>
          openExchanged(r.port),
        ),
      );
      for (const o of opened) {
        if (o.status === 'fulfilled') {
          o.value.on('error', () => {
            errors++;
          });
          socks.push(o.value);
        } else errors++;
      }
    }
    // Let every session reach its backend and settle before reading memory.
    await settle(step === steps ? 1000 : 500);
    points.push([socks.length, rssKb(r.pid).rss]);
  }
  const peak = rssKb(r.pid).peak;
  for (const s of socks) s.destroy();
  await settle(500);
  return {
    rps: Number.NaN,
    p50: Number.NaN,
    p99: Number.NaN,
    errors,
    cpuUs: Number.NaN,
    peakRssMiB: peak / 1024,
    kibPerSession: slope(points),
  };
}

/** Least-squares slope of y over x. */
export function slope(points: readonly (readonly [number, number])[]): number {
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den > 0 ? num / den : Number.NaN;
}
