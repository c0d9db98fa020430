import type { Step, StepVerdict } from './exchange.js';

/** SSLRequest: length 8, code 80877103 (1234 << 16 | 5679). */
const SSL_REQUEST = Buffer.from('0000000804d2162f', 'hex');

/** The text of an error reply is shown up to this many bytes. */
const SHOWN = 120;

/**
 * 'E', then (protocol 3) a 4-byte length and NUL-separated fields, or (a
 * server older than SSL) a NUL-terminated text. The verdict waits for the
 * text it shows, so it is the same however the reply is cut into reads.
 */
function errorReply(got: Buffer): StepVerdict {
  if (got.length < 5) return null;
  const len = got.readUInt32BE(1);
  let from = 5;
  let to = Math.min(1 + len, from + SHOWN);
  if (len < 4 || len > 8192) {
    from = 1;
    const nul = got.indexOf(0, 1);
    to = nul >= 0 ? Math.min(nul, from + SHOWN) : from + SHOWN;
  }
  if (got.length < to) return null;
  return `postgres: error reply ${got.toString('latin1', from, to).replace(/\0/g, ' ').trim()}`;
}

/**
 * PostgreSQL answers an SSLRequest with one byte: 'S' (TLS is on offer) or
 * 'N' (it is not). An 'E' is an error message (a server too old, or one
 * refusing connections): it is not a PostgreSQL that accepts sessions.
 */
function sslAnswer(got: Buffer): StepVerdict {
  const b = got[0];
  if (b === 0x53 || b === 0x4e) return true;
  if (b === 0x45) return errorReply(got);
  return `postgres: unexpected reply 0x${(b ?? 0).toString(16)} to SSLRequest`;
}

/**
 * kind = "postgres": the SSLRequest exchange, as every libpq client opens it.
 * PostgreSQL logs nothing for a client that leaves after it, and it needs no
 * user or database.
 */
export function postgresSteps(): Step[] {
  return [{ send: SSL_REQUEST, check: sslAnswer, what: "'S' or 'N' to SSLRequest" }];
}
