import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

/*
 * The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL uses
 * it: no channel binding ("n,,"), the user name taken from the startup
 * message (so "n=" is empty), the password as its UTF-8 bytes (SASLprep is
 * not applied: passwords outside ASCII that SASLprep would change fail).
 */

/** More iterations than this are refused: each probe's first login would block the loop. */
const MAX_ITERATIONS = 1_000_000;

const hmac = (key: Buffer, text: string): Buffer => createHmac('sha256', key).update(text).digest();

export class Scram {
  private readonly clientNonce = randomBytes(18).toString('base64');
  private readonly firstBare = `n=,r=${this.clientNonce}`;
  private serverSignature: Buffer | null = null;

  constructor(
    private readonly password: string,
    /** Salted passwords by salt and iteration count, kept by the probe across logins (PBKDF2 is the costly part). */
    private readonly salted: Map<string, Buffer>,
  ) {}

  /** The client-first-message, with its GS2 header. */
  first(): string {
    return `n,,${this.firstBare}`;
  }

  /** The client-final-message for the server-first-message; a string starting "!" is why not. */
  final(serverFirst: string): string {
    const f = new Map(serverFirst.split(',').map((kv) => [kv.slice(0, 1), kv.slice(2)] as const));
    const nonce = f.get('r') ?? '';
    const salt = f.get('s') ?? '';
    const iterations = Number(f.get('i'));
    if (!nonce.startsWith(this.clientNonce) || nonce.length === this.clientNonce.length)
      return '!the server nonce does not extend ours';
    if (
      salt === '' ||
      !Number.isInteger(iterations) ||
      iterations < 1 ||
      iterations > MAX_ITERATIONS
    )
      return `!bad salt or iteration count in "${serverFirst.slice(0, 80)}"`;
    const key = `${salt}:${iterations}`;
    let salted = this.salted.get(key);
    if (!salted) {
      salted = pbkdf2Sync(this.password, Buffer.from(salt, 'base64'), iterations, 32, 'sha256');
      if (this.salted.size > 16) this.salted.clear();
      this.salted.set(key, salted);
    }
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.firstBare},${serverFirst},${withoutProof}`;
    const clientKey = hmac(salted, 'Client Key');
    const storedKey = createHash('sha256').update(clientKey).digest();
    const signature = createHmac('sha256', storedKey).update(authMessage).digest();
    const proof = Buffer.alloc(clientKey.length);
    for (let i = 0; i < proof.length; i++)
      proof[i] = (clientKey[i] as number) ^ (signature[i] as number);
    this.serverSignature = createHmac('sha256', hmac(salted, 'Server Key'))
      .update(authMessage)
      .digest();
    return `${withoutProof},p=${proof.toString('base64')}`;
  }

  /** The server-final-message proves the server knew the password too. */
  verify(serverFinal: string): boolean {
    const m = /^v=([A-Za-z0-9+/=]+)$/.exec(serverFinal.trim());
    if (!m || !this.serverSignature) return false;
    const got = Buffer.from(m[1] as string, 'base64');
    return got.length === this.serverSignature.length && timingSafeEqual(got, this.serverSignature);
  }
}
