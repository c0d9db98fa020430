import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

/** A certificate and its key as files, and the PEM text of the certificate. */
export interface Issued {
  readonly cert: string;
  readonly key: string;
  readonly pem: Buffer;
}

/** A throwaway CA with ECDSA P-256 keys, made with the openssl CLI in a temp dir removed after the test. */
export interface Issuer {
  readonly dir: string;
  readonly caFile: string;
  readonly ca: Buffer;
  /** A server certificate for these DNS names (the first is the CN). `file` names the files (reuse to replace them). */
  server(names: string[], file?: string): Issued;
  /** A client certificate (extendedKeyUsage clientAuth). */
  client(cn: string): Issued;
  /** A self-signed certificate no CA of ours vouches for. */
  selfSigned(cn: string): Issued;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'pipe' });
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

export function makeIssuer(t: TestContext): Issuer {
  const dir = mkdtempSync(join(tmpdir(), 'blitz-pki-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  openssl(
    [
      'req',
      '-x509',
      ...EC,
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-days',
      '2',
      '-subj',
      '/CN=blitz test CA',
    ],
    dir,
  );
  let serial = 1;
  const issue = (file: string, cn: string, ext: string): Issued => {
    writeFileSync(join(dir, `${file}.ext`), ext);
    openssl(
      ['req', ...EC, '-keyout', `${file}.key`, '-out', `${file}.csr`, '-subj', `/CN=${cn}`],
      dir,
    );
    openssl(
      [
        'x509',
        '-req',
        '-in',
        `${file}.csr`,
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca.key',
        '-set_serial',
        String(serial++),
        '-days',
        '2',
        '-out',
        `${file}.pem`,
        '-extfile',
        `${file}.ext`,
      ],
      dir,
    );
    const cert = join(dir, `${file}.pem`);
    return { cert, key: join(dir, `${file}.key`), pem: readFileSync(cert) };
  };
  return {
    dir,
    caFile: join(dir, 'ca.pem'),
    ca: readFileSync(join(dir, 'ca.pem')),
    server: (names, file = names[0] as string) =>
      issue(file, names[0] as string, `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}\n`),
    client: (cn) => issue(`client-${cn}`, cn, 'extendedKeyUsage=clientAuth\n'),
    selfSigned: (cn) => {
      openssl(
        [
          'req',
          '-x509',
          ...EC,
          '-keyout',
          `self-${cn}.key`,
          '-out',
          `self-${cn}.pem`,
          '-days',
          '2',
          '-subj',
          `/CN=${cn}`,
        ],
        dir,
      );
      const cert = join(dir, `self-${cn}.pem`);
      return { cert, key: join(dir, `self-${cn}.key`), pem: readFileSync(cert) };
    },
  };
}

/** Whether a command is on PATH (curl, openssl): tests that need one skip without it, except under CI. */
export function have(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}
