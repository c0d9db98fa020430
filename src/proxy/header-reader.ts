import type { Socket } from 'node:net';
import { type ProxyAddresses, parseProxyHeader } from './proxy-protocol.js';

/** A client that must send a PROXY header gets this long to send all of it. */
export const PROXY_HEADER_TIMEOUT_MS = 3000;

/**
 * Reads a client's PROXY header (v1 or v2) before anything else, from a
 * socket accepted paused; the bytes after it are put back and the socket left
 * paused. `done` is called once: with null and the addresses the header gave
 * (null for LOCAL / UNKNOWN), or with why it failed (malformed, closed early,
 * late). Returns a cancel function for a client that leaves first.
 */
export function readProxyHeader(
  client: Socket,
  done: (failure: string | null, addresses: ProxyAddresses | null) => void,
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
    const r = parseProxyHeader(buf);
    if (r.state === 'more') return;
    if (r.state === 'error') {
      fail(r.reason);
      return;
    }
    cleanup();
    client.pause();
    if (r.consumed < buf.length) client.unshift(buf.subarray(r.consumed));
    done(null, r.header.addresses ?? null);
  };
  const onEnd = (): void => fail('closed before a complete PROXY header');
  const timer = setTimeout(
    () => fail(`no complete PROXY header within ${PROXY_HEADER_TIMEOUT_MS} ms`),
    PROXY_HEADER_TIMEOUT_MS,
  );
  timer.unref();
  client.on('data', onData);
  client.once('end', onEnd);
  // Accepted paused (readableFlowing = false): a 'data' listener alone does not start reading.
  client.resume();
  return cleanup;
}
