import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

/** A certificate and its key: file names (for configs) and PEM text (for node:tls servers). */
export interface Pair {
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
}

/** Throwaway CAs and ECDSA P-256 certificates, made with the openssl CLI in a temp dir. */
export interface Pki {
  dir: string;
  ca: Pair;
  otherCa: Pair;
  /** "backend.test", "alt.test" and 127.0.0.1, from `ca`. */
  server: Pair;
  /** The same names, from `otherCa`: a backend nobody here trusts. */
  rogue: Pair;
  /** Only "other.test", from `ca`: trusted, but for the wrong name. */
  wrongName: Pair;
  /** A client certificate from `ca`, for mTLS. */
  client: Pair;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

function read(dir: string, name: string): Pair {
  const certFile = join(dir, `${name}.pem`);
  const keyFile = join(dir, `${name}.key`);
  return { certFile, keyFile, cert: readFileSync(certFile), key: readFileSync(keyFile) };
}

function makeCa(dir: string, name: string): Pair {
  openssl(dir, [
    'req',
    '-x509',
    ...EC,
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.pem`,
  ]);
  return read(dir, name);
}

function makeLeaf(dir: string, name: string, ca: string, cn: string, ext: string): Pair {
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(dir, [
    'req',
    '-new',
    ...EC,
    '-subj',
    `/CN=${cn}`,
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
  ]);
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.pem`,
    '-CAkey',
    `${ca}.key`,
    '-CAcreateserial',
    '-days',
    '1',
    '-extfile',
    `${name}.ext`,
    '-out',
    `${name}.pem`,
  ]);
  return read(dir, name);
}

export function makePki(t: TestContext): Pki {
  const dir = mkdtempSync(join(tmpdir(), 'blitz-pki-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const serverExt =
    'subjectAltName=DNS:backend.test,DNS:alt.test,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n';
  return {
    dir,
    ca: makeCa(dir, 'ca'),
    otherCa: makeCa(dir, 'other-ca'),
    server: makeLeaf(dir, 'server', 'ca', 'backend.test', serverExt),
    rogue: makeLeaf(dir, 'rogue', 'other-ca', 'backend.test', serverExt),
    wrongName: makeLeaf(
      dir,
      'wrong-name',
      'ca',
      'other.test',
      'subjectAltName=DNS:other.test\nextendedKeyUsage=serverAuth\n',
    ),
    client: makeLeaf(dir, 'client', 'ca', 'blitz-lb client', 'extendedKeyUsage=clientAuth\n'),
  };
}
