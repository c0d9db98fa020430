import type { Socket } from 'node:net';
import { readPrefix } from './prefix-reader.js';
import { type ProxyAddresses, parseProxyHeader } from './proxy-protocol.js';

/** A client that must send a PROXY header gets this long to send all of it. */
export const PROXY_HEADER_TIMEOUT_MS = 3000;

/**
 * Reads a client's PROXY header (v1 or v2) before anything else; the bytes
 * after it are put back. `done` gets the addresses the header gave (null for
 * LOCAL / UNKNOWN), or why it failed (see readPrefix).
 */
export function readProxyHeader(
  client: Socket,
  done: (failure: string | null, addresses: ProxyAddresses | null) => void,
): () => void {
  return readPrefix<ProxyAddresses | null>(
    client,
    'PROXY header',
    PROXY_HEADER_TIMEOUT_MS,
    (buf) => {
      const r = parseProxyHeader(buf);
      return r.state === 'done'
        ? { state: 'done', value: r.header.addresses ?? null, keep: r.consumed }
        : r;
    },
    done,
  );
}
