import { createRequire } from 'node:module';
import type * as Undici from 'undici';

let mod: typeof Undici | null = null;

/**
 * undici, loaded at the first lb.request() / lb.dispatcher() and never before.
 * Importing it at start made every socket of the process dearer, though no
 * HTTP request was ever made: the bulk bench's CPU per GiB went 1.7x (A/B of
 * the same build with and without the import, `npm run bench:ab -- --bulk`).
 * A feature that is off costs nothing. undici is CommonJS, so a synchronous
 * require serves the synchronous lb.dispatcher().
 */
export function undici(): typeof Undici {
  if (mod === null) mod = createRequire(import.meta.url)('undici') as typeof Undici;
  return mod;
}
