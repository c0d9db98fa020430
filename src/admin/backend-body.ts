import { BACKEND_KEYS, backendName, settings } from '../config/backend-settings.js';
import { checkKeys, hostPort, isTable, Problems } from '../config/fields.js';
import type { BackendConfig } from '../config/schema.js';
import { HttpError } from './request-guard.js';

/**
 * A backend to add from POST /api/services/NAME/backends/ADDRESS: the body
 * holds the keys a backend table in the file takes (name, weight, backup,
 * max_connections, max_rate, slow_start), checked by the same validator.
 * An empty body takes every default.
 */
export function backendFromBody(address: string, body: string): BackendConfig {
  let t: unknown = {};
  if (body.trim() !== '') {
    try {
      t = JSON.parse(body);
    } catch {
      throw new HttpError(400, 'body must be JSON: {"weight": 2, "backup": false, …}');
    }
  }
  if (!isTable(t)) throw new HttpError(400, 'body must be a JSON object of backend settings');
  const p = new Problems('backend');
  checkKeys(
    t,
    BACKEND_KEYS.filter((k) => k !== 'address'),
    '',
    p,
  );
  const hp = hostPort(address, 'address', p);
  const cfg = settings(t, '', p);
  const name = backendName(t.name, 'name', p);
  if (p.list.length > 0 || !hp) throw new HttpError(400, p.list.join('; '));
  return Object.freeze({ ...hp, ...cfg, ...(name === undefined ? {} : { name }) });
}
