import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { filePath, type Problems } from './fields.js';
import { MAX_PEM_BYTES, readGuarded, refusalOf } from './guarded-file.js';

/** A PEM file as read at validation: where it came from (for messages) and its text. */
export interface PemFile {
  readonly file: string;
  readonly pem: string;
}

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * Reads the PEM file named at `path` (relative names are taken from `baseDir`,
 * the config file's directory), or reports why not. Null when absent or unreadable.
 */
export function readPem(v: unknown, path: string, baseDir: string, p: Problems): PemFile | null {
  if (v === undefined) return null;
  const file = filePath(v, path, baseDir, 'a file name', p);
  if (file === null) return null;
  try {
    // file: the name as written (v, a string once filePath took it), for messages.
    return Object.freeze({
      file: v as string,
      pem: readGuarded(file, MAX_PEM_BYTES).toString('utf8'),
    });
  } catch (err) {
    p.add(path, `cannot read ${file}: ${refusalOf(err).why}`);
    return null;
  }
}

/** The certificates in a PEM bundle, or a problem when there is none or one does not parse. */
export function parseCerts(f: PemFile, path: string, p: Problems): X509Certificate[] {
  const blocks = f.pem.match(CERT_BLOCK) ?? [];
  if (blocks.length === 0) {
    p.add(path, `${f.file} holds no PEM certificate (no "-----BEGIN CERTIFICATE-----" block)`);
    return [];
  }
  const out: X509Certificate[] = [];
  for (const [i, block] of blocks.entries()) {
    try {
      out.push(new X509Certificate(block));
    } catch (err) {
      p.add(path, `${f.file}: certificate ${i + 1} does not parse: ${(err as Error).message}`);
      return [];
    }
  }
  return out;
}

/** The private key in a PEM file, or a problem. */
export function parseKey(f: PemFile, path: string, p: Problems): KeyObject | null {
  try {
    return createPrivateKey(f.pem);
  } catch (err) {
    const encrypted = /ENCRYPTED/.test(f.pem)
      ? ' (an encrypted key: store it without a passphrase)'
      : '';
    p.add(path, `${f.file} holds no usable PEM private key${encrypted}: ${(err as Error).message}`);
    return null;
  }
}
