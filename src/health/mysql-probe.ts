import type { Step, StepVerdict } from './exchange.js';

/**
 * The server's first packet: 3-byte length, sequence id, payload. A protocol
 * 10 handshake starts with 0x0a and a NUL-terminated version; an error packet
 * (0xff, code, message) is how MySQL says "Host … is blocked" or "Too many
 * connections".
 */
function greeting(got: Buffer): StepVerdict {
  if (got.length < 4) return null;
  const len = got.readUIntLE(0, 3);
  if (got.length < 4 + Math.min(len, 256)) return null;
  const first = got[4];
  if (first === 0x0a) {
    const nul = got.indexOf(0, 5);
    if (nul < 0) return len > 256 ? 'mysql: no server version in greeting' : null;
    return true;
  }
  if (first === 0xff && len >= 3) {
    const end = Math.min(4 + len, got.length);
    const msg = got.toString('utf8', got[7] === 0x23 ? 13 : 7, end).slice(0, 120);
    return `mysql: error ${got.readUInt16LE(5)} ${msg}`;
  }
  return `mysql: not a protocol-10 handshake (first byte 0x${(first ?? 0).toString(16)})`;
}

/**
 * kind = "mysql" (MySQL, MariaDB): the server greeting arrives and is a
 * protocol-10 handshake. Nothing is sent; the connection is closed after the
 * greeting (see the README on max_connect_errors).
 */
export function mysqlSteps(): Step[] {
  return [{ send: null, check: greeting, what: 'the server greeting' }];
}
