/**
 * The TLS bench's load generator, in its own process so its CPU is apart from
 * the bench's: `node tls-load.js JSON`, prints one JSON line of results.
 *
 * - `handshake`: `loops` concurrent loops of tls.connect → one GET
 *   (Connection: close) → the response to its end → close, for `seconds`.
 *   No session is ever passed to tls.connect, so every connection is a full
 *   handshake (wrk and autocannon keep their connections; `openssl s_time`
 *   runs one connection at a time); one that resumed anyway is an error.
 *   The secure context is made once: Node's client cache is off unless a
 *   session is passed, and a context per connection would make the load
 *   generator, not the target, the limit.
 * - `ttfb`: `count` plain TCP connections one after another, `gapMs` apart,
 *   each sending one GET at once: time from connect() to the first response
 *   byte, which is what a balancer's dial (or its warm socket) adds.
 */
import { connect as tcpConnect } from 'node:net';
import { createSecureContext, connect as tlsConnect } from 'node:tls';

export interface HandshakeSpec {
  mode: 'handshake';
  port: number;
  loops: number;
  seconds: number;
}
export interface TtfbSpec {
  mode: 'ttfb';
  port: number;
  count: number;
  gapMs: number;
}
export interface LoadOut {
  /** Failed, timed out, not a 200, or (handshake mode) resumed instead of a full handshake. */
  errors: number;
  /** Wall seconds from the first connect to the last one's end. */
  seconds: number;
  /** One per successful connection, ms: the whole connection (handshake) or connect to first byte (ttfb). */
  lat: number[];
  /** This process's CPU over the run, as % of one core: a load generator near 100 % is the limit. */
  cpuPct: number;
}

const REQUEST = Buffer.from('GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
/** A connection that takes longer than this is counted as an error and dropped. */
const CONN_DEADLINE_MS = 10_000;

const context = createSecureContext({});

/** One TLS connection, full handshake; resolves true when a whole 200 response came back. */
function oneTls(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    let head = '';
    let settled = false;
    const s = tlsConnect({
      port,
      host: '127.0.0.1',
      servername: 'localhost',
      rejectUnauthorized: false,
      secureContext: context,
    });
    const finish = (ok: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), CONN_DEADLINE_MS);
    s.on('error', () => finish(false));
    s.once('secureConnect', () => {
      if (s.isSessionReused()) finish(false);
      else s.write(REQUEST);
    });
    s.on('data', (d: Buffer) => {
      if (head.length < 12) head += d.toString('latin1', 0, 12);
    });
    s.once('end', () => finish(head.startsWith('HTTP/1.1 200')));
    s.once('close', () => finish(false));
  });
}

async function handshakes(spec: HandshakeSpec): Promise<LoadOut> {
  const lat: number[] = [];
  let errors = 0;
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const until = start + spec.seconds * 1000;
  const loop = async (): Promise<void> => {
    while (performance.now() < until) {
      const t0 = performance.now();
      if (await oneTls(spec.port)) lat.push(performance.now() - t0);
      else {
        errors++;
        // A peer that refuses must not turn the loop into a spin.
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  };
  await Promise.all(Array.from({ length: spec.loops }, loop));
  return out(lat, errors, start, cpu0);
}

/** One plain TCP connection: ms from connect() to the first response byte, or null on failure. */
function oneTtfb(port: number): Promise<number | null> {
  return new Promise((resolve) => {
    let first = Number.NaN;
    let head = '';
    let settled = false;
    const t0 = performance.now();
    const s = tcpConnect({ port, host: '127.0.0.1' });
    const finish = (ok: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.destroy();
      resolve(ok ? first : null);
    };
    const timer = setTimeout(() => finish(false), CONN_DEADLINE_MS);
    s.setNoDelay(true);
    s.on('error', () => finish(false));
    s.once('connect', () => s.write(REQUEST));
    s.on('data', (d: Buffer) => {
      if (Number.isNaN(first)) first = performance.now() - t0;
      if (head.length < 12) head += d.toString('latin1', 0, 12);
    });
    s.once('end', () => finish(head.startsWith('HTTP/1.1 200')));
    s.once('close', () => finish(false));
  });
}

async function ttfb(spec: TtfbSpec): Promise<LoadOut> {
  const lat: number[] = [];
  let errors = 0;
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  for (let i = 0; i < spec.count; i++) {
    const ms = await oneTtfb(spec.port);
    if (ms === null) errors++;
    else lat.push(ms);
    if (spec.gapMs > 0) await new Promise((r) => setTimeout(r, spec.gapMs));
  }
  return out(lat, errors, start, cpu0);
}

function out(lat: number[], errors: number, start: number, cpu0: NodeJS.CpuUsage): LoadOut {
  const seconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return {
    errors,
    seconds,
    lat: lat.map((x) => Math.round(x * 1000) / 1000),
    cpuPct: ((cpu.user + cpu.system) / 1e6 / seconds) * 100,
  };
}

const spec = JSON.parse(process.argv[2] ?? '{}') as HandshakeSpec | TtfbSpec;
const result = spec.mode === 'handshake' ? await handshakes(spec) : await ttfb(spec);
process.stdout.write(`${JSON.stringify(result)}\n`);
