import type { Socket } from 'node:net';
import { readPrefix } from '../prefix-reader.js';
import { type HelloResult, parseClientHello } from './client-hello.js';

export type HelloDone = Extract<HelloResult, { state: 'done' }>;

/**
 * Reads a client's TLS ClientHello without consuming it: every byte read is
 * put back, so the backend (or the TLS terminator) reads it all unchanged.
 * Failures: not TLS, malformed, too large, closed early, late (see readPrefix).
 */
export function readClientHello(
  client: Socket,
  timeoutMs: number,
  done: (failure: string | null, hello: HelloDone | null) => void,
): () => void {
  return readPrefix<HelloDone>(
    client,
    'ClientHello',
    timeoutMs,
    (buf) => {
      const r = parseClientHello(buf);
      return r.state === 'done' ? { state: 'done', value: r, keep: 0 } : r;
    },
    done,
  );
}
