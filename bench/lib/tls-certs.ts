import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The one ECDSA P-256 certificate every TLS target of a bench run serves
 * (blitz-lb, HAProxy, nginx, and the TLS backends), so the peers sign the
 * same handshakes with the same key. Made once per run with the openssl CLI.
 */
export interface BenchCerts {
  dir: string;
  /** The CA that issued `cert`: what backend verification trusts. */
  ca: string;
  /** Leaf for 127.0.0.1 and "localhost". */
  cert: string;
  key: string;
  /** cert then key in one file: HAProxy's `crt`. */
  combined: string;
  cleanup(): void;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

export function makeBenchCerts(): BenchCerts {
  const dir = mkdtempSync(join(tmpdir(), 'blitz-bench-tls-'));
  const openssl = (args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  };
  openssl([
    'req',
    '-x509',
    ...EC,
    '-days',
    '2',
    '-subj',
    '/CN=blitz-lb bench CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
  ]);
  writeFileSync(
    join(dir, 'server.ext'),
    'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n',
  );
  openssl([
    'req',
    '-new',
    ...EC,
    '-subj',
    '/CN=localhost',
    '-keyout',
    'server.key',
    '-out',
    'server.csr',
  ]);
  openssl([
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '1',
    '-extfile',
    'server.ext',
    '-out',
    'server.pem',
  ]);
  const combined = join(dir, 'server-combined.pem');
  writeFileSync(
    combined,
    Buffer.concat([readFileSync(join(dir, 'server.pem')), readFileSync(join(dir, 'server.key'))]),
  );
  return {
    dir,
    ca: join(dir, 'ca.pem'),
    cert: join(dir, 'server.pem'),
    key: join(dir, 'server.key'),
    combined,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
