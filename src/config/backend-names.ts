import type { Problems } from './fields.js';
import type { BackendConfig } from './types.js';

/**
 * Backend names are unique in a service, and a name is never another
 * backend's address (an unnamed backend goes by its address): the admin
 * API's /backends/NAME_OR_ADDRESS and a route's `backends = [...]` must each
 * name exactly one backend. Duplicate addresses are the address check's.
 */
export function checkBackendNames(
  backends: readonly BackendConfig[],
  path: string,
  p: Problems,
): void {
  const byName = new Map<string, number>();
  const addresses = new Map(backends.map((b, i) => [b.address, i] as const));
  backends.forEach((b, i) => {
    const name = b.name;
    if (name === undefined) return;
    const first = byName.get(name);
    if (first !== undefined)
      p.add(`${path}[${i}].name`, `backend name "${name}" is also the name of ${path}[${first}]`);
    else byName.set(name, i);
    const owner = addresses.get(name);
    if (owner !== undefined && owner !== i)
      p.add(`${path}[${i}].name`, `backend name "${name}" is the address of ${path}[${owner}]`);
  });
}
