/**
 * Certificate verification failures by OpenSSL's code (as Node reports it),
 * with OpenSSL's own wording: the cause text of a dial that failed on them.
 */
const VERIFY_TEXT: Readonly<Record<string, string>> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'unable to verify the first certificate',
  UNABLE_TO_GET_ISSUER_CERT: 'unable to get issuer certificate',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'unable to get local issuer certificate',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'self-signed certificate',
  SELF_SIGNED_CERT_IN_CHAIN: 'self-signed certificate in certificate chain',
  CERT_HAS_EXPIRED: 'certificate has expired',
  CERT_NOT_YET_VALID: 'certificate is not yet valid',
  CERT_REVOKED: 'certificate revoked',
  CERT_SIGNATURE_FAILURE: 'certificate signature failure',
  CERT_UNTRUSTED: 'certificate not trusted',
  CERT_REJECTED: 'certificate rejected',
  CERT_CHAIN_TOO_LONG: 'certificate chain too long',
  INVALID_CA: 'invalid CA certificate',
  INVALID_PURPOSE: 'unsupported certificate purpose',
  PATH_LENGTH_EXCEEDED: 'path length constraint exceeded',
  HOSTNAME_MISMATCH: 'hostname mismatch',
  ERR_TLS_CERT_ALTNAME_INVALID: 'certificate is not valid for the server name',
};

/**
 * The cause text of a TLS dial that failed after the TCP connect: a
 * verification failure or an OpenSSL error gets a "tls: " prefix
 * ("tls: unable to verify the first certificate", "tls: wrong version
 * number"); a socket error (ECONNRESET mid-handshake) stays its errno code.
 * Decided by `code` only.
 */
export function tlsCause(err: Error): string {
  const e = err as NodeJS.ErrnoException & { host?: string };
  const code = e.code;
  if (code === undefined) return `tls: ${err.message}`;
  const text = VERIFY_TEXT[code];
  if (text !== undefined) {
    return code === 'ERR_TLS_CERT_ALTNAME_INVALID' && e.host
      ? `tls: certificate is not valid for "${e.host}"`
      : `tls: ${text}`;
  }
  if (code.startsWith('ERR_SSL_'))
    return `tls: ${code.slice(8).toLowerCase().replaceAll('_', ' ')}`;
  return code;
}
