import type { Socket } from 'node:net';
import { type HelloResult, parseClientHello } from './client-hello.js';

export type HelloDone = Extract<HelloResult, { state: 'done' }>;

/**
 * Reads a client's TLS ClientHello from a socket accepted paused, without
 * consuming it: once the hello is complete, every byte read is put back
 * (unshift) and the socket left paused, so the backend (or the TLS
 * terminator) reads it all unchanged. `done` is called once: with null and the
 * hello, or with why it failed (not TLS, malformed, too large, closed early,
 * late). Returns a cancel function for a client that leaves first.
 */
export function readClientHello(
  client: Socket,
  timeoutMs: number,
  done: (failure: string | null, hello: HelloDone | null) => void,
): () => void {
  let buf: Buffer = Buffer.alloc(0);
  const cleanup = (): void => {
    clearTimeout(timer);
    client.removeListener('data', onData);
    client.removeListener('end', onEnd);
  };
  const fail = (reason: string): void => {
    cleanup();
    done(reason, null);
  };
  const onData = (d: Buffer): void => {
    buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
    const r = parseClientHello(buf);
    if (r.state === 'more') return;
    if (r.state === 'error') {
      fail(r.reason);
      return;
    }
    cleanup();
    client.pause();
    client.unshift(buf);
    done(null, r);
  };
  const onEnd = (): void => fail('closed before a complete ClientHello');
  const timer = setTimeout(() => fail(`no complete ClientHello within ${timeoutMs} ms`), timeoutMs);
  timer.unref();
  client.on('data', onData);
  client.once('end', onEnd);
  client.resume();
  return cleanup;
}
