import { isAbsolute, resolve } from 'node:path';
import type { HostPort } from './address.js';
import { describe } from './duration.js';
import { hostPort, type Problems } from './fields.js';
import { checkPlace } from './guarded-file.js';

/** `listen = "unix:/run/blitz-lb/admin.sock"`: the admin server on a Unix socket (HAProxy's stats socket). */
export interface UnixListen {
  /** Absolute path of the socket file. */
  readonly unix: string;
  /** Permission bits the socket file gets (admin.mode; 0o600 by default). */
  readonly mode: number;
  /** "unix:PATH", as messages show it. */
  readonly address: string;
}

export type AdminListen = HostPort | UnixListen;

export function isUnixListen(l: AdminListen): l is UnixListen {
  return 'unix' in l;
}

/** Linux's sun_path holds 108 bytes, the terminating NUL included. */
const MAX_SOCKET_PATH = 107;
const DEFAULT_MODE = 0o600;

/**
 * [admin] listen: "host:port", or "unix:PATH" (a relative PATH is taken
 * from the config file's directory) with `mode`, the socket file's
 * permissions as an octal string ("0660"). `mode` without a Unix socket is
 * an error: a TCP port has no file to set it on.
 */
export function adminListen(
  listen: unknown,
  mode: unknown,
  p: Problems,
  minPort: number,
  baseDir: string | undefined,
): AdminListen | undefined {
  const unix = typeof listen === 'string' && listen.startsWith('unix:');
  if (mode !== undefined && !unix)
    p.add('admin.mode', 'only for a Unix socket (listen = "unix:/path/admin.sock")');
  if (!unix) return hostPort(listen, 'admin.listen', p, minPort);
  const raw = (listen as string).slice(5);
  if (raw === '') {
    p.add('admin.listen', 'expected "unix:/path/to/admin.sock", got "unix:" with no path');
    return undefined;
  }
  const path = isAbsolute(raw) ? raw : resolve(baseDir ?? process.cwd(), raw);
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
    p.add('admin.listen', `a Unix socket path is at most ${MAX_SOCKET_PATH} bytes, got ${path}`);
    return undefined;
  }
  // A FIFO, a regular file or a directory at the socket's path is found by `check`, not by listen().
  const bad = checkPlace(path, 'socket');
  if (bad) p.add('admin.listen', `${path}: ${bad.why}`);
  let bits = DEFAULT_MODE;
  if (mode !== undefined) {
    if (typeof mode !== 'string' || !/^0?[0-7]{3}$/.test(mode))
      p.add('admin.mode', `expected octal permissions such as "0660", got ${describe(mode)}`);
    else bits = Number.parseInt(mode, 8);
  }
  return Object.freeze({ unix: path, mode: bits, address: `unix:${path}` });
}
