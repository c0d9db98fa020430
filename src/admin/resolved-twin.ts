import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { formatHostPort, parseHostPort } from '../config/address.js';
import { HttpError } from './request-guard.js';

/** How long an added name's lookup may take; past it the name is added unchecked (it is resolved at dial time anyway). */
const LOOKUP_MS = 1000;

/** An address a resolver gives, in the backends' canonical form ("::ffff:a.b.c.d" is a.b.c.d). */
function canonical(ip: string, port: number): string {
  const hp = parseHostPort(formatHostPort(ip, port), 0);
  return 'address' in hp ? hp.address : formatHostPort(ip, port);
}

/**
 * POST /api/services/NAME/backends/ADDRESS with a DNS name: the name is kept
 * as written, but may not be a second spelling of a literal backend already
 * there ("db.internal:5432" resolving to 10.0.0.5 beside "10.0.0.5:5432").
 * Throws a 409 naming the literal. A name that does not resolve (now) passes.
 */
export async function refuseResolvedTwin(
  address: string,
  has: (address: string) => boolean,
): Promise<void> {
  const hp = parseHostPort(address);
  if ('error' in hp || isIP(hp.host) !== 0) return;
  let found: { address: string }[] = [];
  let timer: NodeJS.Timeout | undefined;
  try {
    found = await Promise.race([
      lookup(hp.host, { all: true }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), LOOKUP_MS);
      }),
    ]);
  } catch {
    return;
  } finally {
    clearTimeout(timer);
  }
  for (const f of found) {
    const twin = canonical(f.address, hp.port);
    if (has(twin))
      throw new HttpError(409, `backend ${hp.address} resolves to ${twin}, which already exists`);
  }
}
