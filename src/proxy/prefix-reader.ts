import type { Socket } from 'node:net';

/** What a prefix parser says of the bytes so far. */
export type PrefixStep<T> =
  | { state: 'more' }
  | { state: 'error'; reason: string }
  /** `keep`: the bytes from this offset are put back for whoever reads next (0: all of them). */
  | { state: 'done'; value: T; keep: number };

/**
 * Reads what a client must send first (a PROXY header, a TLS ClientHello) from a
 * socket accepted paused; the bytes from `keep` on are put back and the socket
 * left paused. `done` is called once: with null and the parsed value, or with
 * why it failed (malformed, closed early, late). Returns a cancel function for
 * a client that leaves first.
 */
export function readPrefix<T>(
  client: Socket,
  what: string,
  timeoutMs: number,
  parse: (buf: Buffer) => PrefixStep<T>,
  done: (failure: string | null, value: T | null) => void,
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
    const r = parse(buf);
    if (r.state === 'more') return;
    if (r.state === 'error') {
      fail(r.reason);
      return;
    }
    cleanup();
    client.pause();
    if (r.keep < buf.length) client.unshift(r.keep === 0 ? buf : buf.subarray(r.keep));
    done(null, r.value);
  };
  const onEnd = (): void => fail(`closed before a complete ${what}`);
  const timer = setTimeout(() => fail(`no complete ${what} within ${timeoutMs} ms`), timeoutMs);
  timer.unref();
  client.on('data', onData);
  client.once('end', onEnd);
  // Accepted paused (readableFlowing = false): a 'data' listener alone does not start reading.
  client.resume();
  return cleanup;
}
