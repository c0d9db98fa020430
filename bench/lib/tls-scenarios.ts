import { fork } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HandshakeSpec, LoadOut, TtfbSpec } from '../tls-load.js';
import { runLoad } from './load.js';
import type { Running } from './peers.js';
import { type Figures, measure, type ScenarioOpts } from './scenarios.js';

const here = dirname(fileURLToPath(import.meta.url));

/**
 * Concurrent handshake loops, split over LOAD_PROCS processes: a Node TLS
 * client costs about as much CPU per handshake as the balancer, so one
 * process alone would cap the rate of a target cheaper than itself.
 */
export const HANDSHAKE_LOOPS = 16;
export const LOAD_PROCS = 2;
/** Pause between the connections of the connect-latency run, so a warm pool refills between them. */
export const TTFB_GAP_MS = 10;
/**
 * Connections made back to back, unmeasured, before the connect-latency run:
 * a few hundred connections at 100 a second leave a JIT-compiled target's
 * hot path cold, and the run would measure the interpreter, not the path.
 */
export const TTFB_WARMUP = 300;

interface Load {
  done: number;
  errors: number;
  seconds: number;
  p50: number;
  p99: number;
  /** Summed over the load processes, % of one core. */
  cpuPct: number;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

/** Runs `procs` bench/tls-load.js processes at once, each with `spec`, and merges their results. */
async function tlsLoad(spec: HandshakeSpec | TtfbSpec, procs = 1): Promise<Load> {
  const outs = await Promise.all(Array.from({ length: procs }, () => loadProcess(spec)));
  const lat = outs.flatMap((o) => o.lat).sort((a, b) => a - b);
  return {
    done: lat.length,
    errors: outs.reduce((n, o) => n + o.errors, 0),
    seconds: Math.max(...outs.map((o) => o.seconds)),
    p50: quantile(lat, 0.5),
    p99: quantile(lat, 0.99),
    cpuPct: outs.reduce((n, o) => n + o.cpuPct, 0),
  };
}

/** Runs bench/tls-load.js in its own process and resolves with its one line of results. */
async function loadProcess(spec: HandshakeSpec | TtfbSpec): Promise<LoadOut> {
  const proc = fork(join(here, '..', 'tls-load.js'), [JSON.stringify(spec)], {
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  let text = '';
  proc.stdout?.on('data', (d: Buffer) => {
    text += d.toString();
  });
  const [code] = (await once(proc, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`tls-load exited with ${code}`);
  return JSON.parse(text) as LoadOut;
}

/**
 * Termination, new connections: every request a new TLS connection with a
 * full handshake, to the plain backends. rps is handshakes (connections) a
 * second; cpuUs the target's CPU per handshake.
 */
export async function tlsHandshakes(r: Running, opts: ScenarioOpts): Promise<Figures> {
  const { out, cpu, peak } = await measure(r, () =>
    tlsLoad(
      {
        mode: 'handshake',
        port: r.port,
        loops: HANDSHAKE_LOOPS / LOAD_PROCS,
        seconds: opts.seconds,
      },
      LOAD_PROCS,
    ),
  );
  return {
    rps: out.done / out.seconds,
    p50: out.p50,
    p99: out.p99,
    errors: out.errors,
    cpuUs: out.done > 0 ? (cpu * 1000) / out.done : Number.NaN,
    peakRssMiB: peak,
    loadCpuPct: out.cpuPct,
    tool: `node tls.connect, ${HANDSHAKE_LOOPS} loops in ${LOAD_PROCS} processes`,
  };
}

/** Termination, keep-alive: many requests over 100 long-lived TLS connections (wrk when installed). */
export async function tlsKeepAlive(r: Running, opts: ScenarioOpts): Promise<Figures> {
  const { out, cpu, peak } = await measure(r, () =>
    runLoad({
      url: `https://127.0.0.1:${r.port}/`,
      connections: 100,
      seconds: opts.seconds,
      churn: false,
      wrk: true,
    }),
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

/**
 * TLS to backends: plain client connections one at a time, each one GET;
 * p50 / p99 are ms from connect() to the first response byte, so they hold
 * the balancer's backend connect and TLS handshake unless a warm socket
 * saved them. cpuUs is the target's CPU per client connection (a pool's
 * refills included).
 */
export async function tlsPool(r: Running, opts: ScenarioOpts): Promise<Figures> {
  const count = opts.ttfbConnections ?? 500;
  await tlsLoad({ mode: 'ttfb', port: r.port, count: TTFB_WARMUP, gapMs: 0 });
  // The warm-up took pooled sockets back to back; let the pool refill before measuring.
  await new Promise((res) => setTimeout(res, 500));
  const pool0 = await r.poolCounters?.();
  const { out, cpu, peak } = await measure(r, () =>
    tlsLoad({ mode: 'ttfb', port: r.port, count, gapMs: TTFB_GAP_MS }),
  );
  const pool1 = await r.poolCounters?.();
  const hits = pool0 && pool1 ? pool1.hits - pool0.hits : Number.NaN;
  const takes = pool0 && pool1 ? hits + pool1.misses - pool0.misses : Number.NaN;
  return {
    poolHitPct: takes > 0 ? (hits / takes) * 100 : Number.NaN,
    rps: out.done / out.seconds,
    p50: out.p50,
    p99: out.p99,
    errors: out.errors,
    cpuUs: out.done > 0 ? (cpu * 1000) / out.done : Number.NaN,
    peakRssMiB: peak,
    tool: `${count} connections, ${TTFB_GAP_MS} ms apart, after ${TTFB_WARMUP} unmeasured`,
  };
}
