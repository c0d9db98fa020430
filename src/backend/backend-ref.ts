import { LbError } from '../errors.js';
import type { Backend } from './backend.js';

/**
 * A backend named by an operator (the admin API's
 * /backends/NAME_OR_ADDRESS, the library's calls): a name is looked up when
 * no backend has that address. A backend still in the set wins over one
 * removed and draining under the same name.
 */
export function namedIn<B extends Backend>(list: readonly B[], name: string): B | undefined {
  let gone: B | undefined;
  for (const b of list) {
    if (b.name !== name) continue;
    if (!b.removed) return b;
    gone ??= b;
  }
  return gone;
}

/**
 * A name given to a backend added at run time (admin API, library) must not
 * be one another backend goes by, by name or address: the API could no
 * longer tell them apart. Discovery is not held to this (a registry's names
 * are its own); a lookup then takes the first.
 */
export function refuseTakenName(
  list: readonly Backend[],
  cfg: { readonly name?: string; readonly address: string },
): void {
  const name = cfg.name;
  if (name === undefined) return;
  const taken = list.find((b) => !b.removed && (b.name === name || b.address === name));
  if (taken && taken.address !== cfg.address)
    throw new LbError(
      'LB_ERR_DUPLICATE_BACKEND',
      `backend name "${name}" is taken by ${taken.address}${taken.name === name ? '' : ' (its address)'}`,
    );
}
