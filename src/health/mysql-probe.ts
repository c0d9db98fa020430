import type { Step, StepVerdict } from './exchange.js';

/**
 * The server's first packet: 3-byte length, sequence id, payload. A protocol
 * 10 handshake starts with 0x0a and a NUL-terminated version; an error packet
 * (0xff, code, message) is how MySQL says "Host … is blocked" or "Too many
 * connections".
 */
function greeting(got: Buffer): StepVerdict {
  if (got.length < 5) return null;
  const len = got.readUIntLE(0, 3);
  const first = got[4] as number;
  if (first !== 0x0a && first !== 0xff)
    return `mysql: not a protocol-10 handshake (first byte 0x${first.toString(16)})`;
  if (len > 0xffff) return `mysql: not a protocol-10 handshake (packet length ${len})`;
  if (first === 0x0a) {
    const nul = got.indexOf(0, 5);
    if (nul >= 0 && nul < 4 + len) return true;
    return got.length >= 4 + len ? 'mysql: no server version in greeting' : null;
  }
  if (got.length < 4 + len) return null;
  // Error packet: 0xff, a 2-byte code, then "#" and a 5-byte SQL state (4.1+), then the message.
  // A payload too short for its code is a reply, not a reason to read past it.
  if (len < 3)
    return `mysql: error packet of ${len} byte${len === 1 ? '' : 's'}, too short for a code`;
  const end = 4 + len;
  const msg = got.toString('utf8', len >= 9 && got[7] === 0x23 ? 13 : 7, end).slice(0, 120);
  return `mysql: error ${got.readUInt16LE(5)} ${msg}`;
}

/**
 * kind = "mysql" (MySQL, MariaDB): the server greeting arrives and is a
 * protocol-10 handshake. Nothing is sent; the connection is closed after the
 * greeting (see docs/health.md on max_connect_errors).
 */
export function mysqlSteps(): Step[] {
  return [{ send: null, check: greeting, what: 'the server greeting' }];
}
