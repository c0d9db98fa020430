import type { Step, StepVerdict } from './exchange.js';

/** SSLRequest: length 8, code 80877103 (1234 << 16 | 5679). */
const SSL_REQUEST = Buffer.from('0000000804d2162f', 'hex');

/**
 * PostgreSQL answers an SSLRequest with one byte: 'S' (TLS is on offer) or
 * 'N' (it is not). An 'E' is an error message (a server too old, or one
 * refusing connections): it is not a PostgreSQL that accepts sessions.
 */
function sslAnswer(got: Buffer): StepVerdict {
  const b = got[0];
  if (b === 0x53 || b === 0x4e) return true;
  if (b === 0x45)
    return `postgres: error reply ${got.toString('latin1', 5, 120).replace(/\0/g, ' ').trim()}`;
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
