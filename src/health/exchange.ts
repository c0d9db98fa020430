import type { Socket } from 'node:net';
import { type ProbeCause, probeCauseOfConnect, probeCauseOfError } from '../backend/causes.js';
import { type Clock, monotonicClock } from '../clock.js';
import { type Connector, PLAIN } from '../upstream/connector.js';
import type { ProbeResult, ProbeTarget } from './probe-result.js';

/** null: not yet, wait for more; true: this step passed; a string: it failed, and why. */
export type StepVerdict = null | true | string;

/** One step of a probe's conversation: bytes to write, then a test of the reply. */
export interface Step {
  readonly send: Buffer | null;
  /** Sees everything this step received so far; null: nothing to wait for. */
  readonly check: ((got: Buffer) => StepVerdict) | null;
  /** What the step waits for, for failure details: 'expect "+PONG"'. */
  readonly what: string;
}

/** A reply longer than this without a verdict fails the step: a probe holds no unbounded buffer. */
const MAX_REPLY = 64 * 1024;

/**
 * Connects to `target` and runs `steps` in order, each bounded by
 * `timeoutMs` of its own (the connect too). A step that sends starts a
 * fresh reply buffer; steps that only expect keep reading the same reply.
 * Healthy when every step passed; the socket is then closed with a FIN.
 */
export function converse(
  target: ProbeTarget,
  steps: readonly Step[],
  timeoutMs: number,
  okDetail: string,
  clock: Clock = monotonicClock,
  /** With TLS (health.tls): the conversation runs inside a verified TLS connection, as for a dial. */
  via: Connector = PLAIN,
): Promise<ProbeResult> {
  const start = clock.now();
  return new Promise((resolve) => {
    via.check(target, timeoutMs, (failure, sock) => {
      if (failure !== null) {
        const cause = probeCauseOfConnect(failure);
        resolve({ ok: false, detail: failure.detail, latencyMs: clock.now() - start, cause });
        return;
      }
      new Conversation(sock, steps, timeoutMs, (ok, detail, cause) => {
        const latencyMs = clock.now() - start;
        resolve(ok ? { ok, detail: okDetail, latencyMs } : { ok, detail, latencyMs, cause });
      }).next();
    });
  });
}

/** What a throw was, in a few words: its class and code, never a stack. */
export function thrown(err: unknown): string {
  if (!(err instanceof Error)) return `threw ${typeof err}`;
  const code = (err as NodeJS.ErrnoException).code;
  return code ? `${err.name} ${code}` : err.name;
}

class Conversation {
  private i = -1;
  private got: Buffer = Buffer.alloc(0);
  private timer: NodeJS.Timeout | null = null;
  private done = false;

  constructor(
    private readonly sock: Socket,
    private readonly steps: readonly Step[],
    private readonly timeoutMs: number,
    private readonly finish: (ok: boolean, detail: string, cause: ProbeCause) => void,
  ) {
    sock.on('error', (err: NodeJS.ErrnoException) =>
      this.fail(err.code ?? err.message, probeCauseOfError(err.code)),
    );
    sock.on('data', (d: Buffer) => this.onData(d));
    sock.on('end', () => this.fail(`closed by the server before ${this.what}`));
    sock.on('close', () => this.fail(`closed before ${this.what}`));
  }

  private get what(): string {
    return this.steps[this.i]?.what ?? 'the end';
  }

  next(): void {
    for (;;) {
      this.i++;
      const s = this.steps[this.i];
      if (!s) {
        this.end(true, 'ok');
        return;
      }
      if (s.send) {
        this.got = Buffer.alloc(0);
        this.sock.write(s.send);
      }
      if (s.check === null) continue;
      this.arm();
      // An expect-only step may be answered by bytes already read.
      if (this.got.length > 0) this.judge();
      return;
    }
  }

  private arm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(
      () =>
        this.fail(`timeout ${this.timeoutMs}ms waiting for ${this.what}${this.seen()}`, 'timeout'),
      this.timeoutMs,
    );
  }

  private onData(d: Buffer): void {
    if (this.done) return;
    this.got = this.got.length === 0 ? d : Buffer.concat([this.got, d]);
    this.judge();
  }

  private judge(): void {
    const s = this.steps[this.i];
    if (!s?.check) return;
    let v: StepVerdict;
    try {
      v = s.check(this.got);
    } catch (err) {
      // A reply parser that throws is a failed check with a reason, never an exception
      // out of a socket's 'data' handler (that would end the process).
      this.fail(`reply to ${this.what} not understood (${thrown(err)})${this.seen()}`);
      return;
    }
    if (v === true) this.next();
    else if (typeof v === 'string') this.fail(v);
    else if (this.got.length > MAX_REPLY)
      this.fail(`no match for ${this.what} in ${MAX_REPLY} bytes`);
  }

  /** A short, printable excerpt of what arrived, for the failure detail. */
  private seen(): string {
    if (this.got.length === 0) return '';
    const text = this.got
      .subarray(0, 40)
      .toString('latin1')
      .replace(/[^\x20-\x7e]/g, '.');
    return ` (got "${text}"${this.got.length > 40 ? '…' : ''})`;
  }

  private fail(detail: string, cause: ProbeCause = 'bad-reply'): void {
    this.end(false, detail, cause);
  }

  private end(ok: boolean, detail: string, cause: ProbeCause = 'bad-reply'): void {
    if (this.done) return;
    this.done = true;
    if (this.timer) clearTimeout(this.timer);
    if (ok) {
      // A FIN after our last words (SMTP's QUIT); the socket goes when the server closes, or at the deadline.
      this.sock.end();
      this.sock.setTimeout(this.timeoutMs, () => this.sock.destroy());
    } else this.sock.destroy();
    this.finish(ok, detail, cause);
  }
}
