import type { Socket } from 'node:net';
import { type ProbeCause, probeCauseOfConnect, probeCauseOfError } from '../backend/causes.js';
import type { Clock } from '../clock.js';
import { type Connector, PLAIN } from '../upstream/connector.js';
import type { ProbeResult, ProbeTarget } from './tcp-probe.js';

/*
 * A login probe's conversation (kind = "mysql" or "postgres" with a user):
 * unlike converse()'s fixed steps, what it sends depends on what the server
 * said (a salt, a nonce). The protocol module frames messages and answers
 * each; this file owns the socket, the deadlines and the clean goodbye.
 */

/** What a protocol says to one whole message from the server. */
export interface Answer {
  /** Bytes to write now (a login packet, a password, COM_QUIT). */
  readonly send?: Buffer;
  /** true: logged in and said goodbye (healthy); a string: failed, and why; absent: go on. */
  readonly verdict?: true | string;
}

export interface Dialogue {
  /** Bytes to write once connected (PostgreSQL's startup message), or null to wait (MySQL). */
  opening(): Buffer | null;
  /** The length of the first whole message in `buf`; 0: not whole yet; a string: not this protocol. */
  frame(buf: Buffer): number | string;
  /** One whole message, framing included. */
  message(msg: Buffer): Answer;
  /** What it waits for now, for a timeout's detail: "the server greeting". */
  waitingFor(): string;
}

/** A server that sends more than this without a whole message is not speaking the protocol. */
const MAX_MESSAGE = 64 * 1024;

/**
 * Connects to `target` and holds `d`'s conversation, each wait for the
 * server bounded by `timeoutMs` (the connect too). Healthy when the dialogue
 * says so: it has sent its goodbye (COM_QUIT, Terminate), and the socket
 * then closes with a FIN, so the server sees a client that logged out.
 */
export function holdDialogue(
  target: ProbeTarget,
  d: Dialogue,
  timeoutMs: number,
  okDetail: string,
  clock: Clock,
  /** How to connect (null: plain TCP); with TLS for health.tls. */
  via: Connector | null,
): Promise<ProbeResult> {
  const start = clock.now();
  return new Promise((resolve) => {
    const finish = (ok: boolean, detail: string, cause: ProbeCause = 'bad-reply'): void =>
      resolve(
        ok
          ? { ok, detail, latencyMs: clock.now() - start }
          : { ok, detail, latencyMs: clock.now() - start, cause },
      );
    (via ?? PLAIN).check(target, timeoutMs, (failure, sock) => {
      if (failure !== null) finish(false, failure.detail, probeCauseOfConnect(failure));
      else new Talk(sock, d, timeoutMs, okDetail, finish).begin();
    });
  });
}

class Talk {
  private got: Buffer = Buffer.alloc(0);
  private timer: NodeJS.Timeout | null = null;
  private done = false;

  constructor(
    private readonly sock: Socket,
    private readonly d: Dialogue,
    private readonly timeoutMs: number,
    private readonly okDetail: string,
    private readonly finish: (ok: boolean, detail: string, cause?: ProbeCause) => void,
  ) {
    sock.on('error', (err: NodeJS.ErrnoException) =>
      this.end(err.code ?? err.message, probeCauseOfError(err.code)),
    );
    sock.on('data', (b: Buffer) => this.onData(b));
    sock.on('end', () => this.end(`closed by the server before ${d.waitingFor()}`));
    sock.on('close', () => this.end(`closed before ${d.waitingFor()}`));
  }

  begin(): void {
    const first = this.d.opening();
    if (first) this.sock.write(first);
    this.arm();
  }

  private arm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(
      () => this.end(`timeout ${this.timeoutMs}ms waiting for ${this.d.waitingFor()}`, 'timeout'),
      this.timeoutMs,
    );
  }

  private onData(b: Buffer): void {
    if (this.done) return;
    this.got = this.got.length === 0 ? b : Buffer.concat([this.got, b]);
    // One chunk may hold several messages (PostgreSQL sends AuthenticationOk, parameters and ReadyForQuery at once).
    try {
      this.judge();
    } catch (err) {
      // A reader's bounds check (WireReader), or anything else a peer's bytes provoke: a verdict, never a crash.
      this.end(`malformed reply (${(err as Error).message}) waiting for ${this.d.waitingFor()}`);
    }
  }

  private judge(): void {
    while (!this.done) {
      const n = this.d.frame(this.got);
      if (typeof n === 'string') {
        this.end(n);
        return;
      }
      if (n === 0 || n > this.got.length) {
        if (this.got.length > MAX_MESSAGE)
          this.end(`no whole message in ${MAX_MESSAGE} bytes waiting for ${this.d.waitingFor()}`);
        return;
      }
      const msg = this.got.subarray(0, n);
      this.got = this.got.subarray(n);
      const a = this.d.message(msg);
      if (a.send) this.sock.write(a.send);
      if (a.verdict !== undefined) {
        this.end(a.verdict);
        return;
      }
      if (a.send) this.arm();
    }
  }

  private end(verdict: true | string, cause: ProbeCause = 'bad-reply'): void {
    if (this.done) return;
    this.done = true;
    if (this.timer) clearTimeout(this.timer);
    if (verdict === true) {
      // The goodbye is written: a FIN after it, and the socket goes when the server closes or at the deadline.
      this.sock.end();
      this.sock.setTimeout(this.timeoutMs, () => this.sock.destroy());
      this.finish(true, this.okDetail);
      return;
    }
    this.sock.destroy();
    this.finish(false, verdict, cause);
  }
}
