import type { HostPort } from './address.js';
import { describe } from './duration.js';
import { hostPort, type Problems } from './fields.js';

/**
 * A socket this process does not bind but is given, listening, by whoever
 * starts it: systemd (LISTEN_FDS, LISTEN_FDNAMES) or any supervisor that
 * passes a descriptor. See src/lifecycle/passed-sockets.ts.
 */
export type PassedSocket =
  | { readonly kind: 'systemd'; readonly name: string }
  | {
      readonly kind: 'fd';
      readonly fd: number;
    };

/**
 * A service's listen address: "host:port" to bind, or "systemd:NAME" /
 * "fd:N" for a passed socket. A passed socket has host "" and port 0 (its
 * address is known once it is open) and is identified by `address`, the
 * text as written.
 */
export interface ListenAddress extends HostPort {
  readonly passed?: PassedSocket;
}

/** The largest descriptor number accepted in "fd:N" (a typo guard, far above any real limit). */
const MAX_FD = 1 << 20;

export function listenAddress(
  v: unknown,
  path: string,
  p: Problems,
  minPort: number,
): ListenAddress | undefined {
  if (typeof v === 'string' && v.startsWith('systemd:')) {
    const name = v.slice('systemd:'.length);
    // systemd's FileDescriptorName=: up to 255 printable ASCII characters, no ":".
    if (!/^[\x21-\x39\x3b-\x7e]{1,255}$/.test(name)) {
      p.add(
        path,
        `expected "systemd:NAME" with the socket unit's FileDescriptorName (printable, no ":" or spaces), got ${describe(v)}`,
      );
      return undefined;
    }
    const passed: PassedSocket = { kind: 'systemd', name };
    return Object.freeze({ host: '', port: 0, address: v, passed });
  }
  if (typeof v === 'string' && v.startsWith('fd:')) {
    const text = v.slice(3);
    const fd = Number(text);
    if (!/^\d{1,7}$/.test(text) || fd < 3 || fd > MAX_FD) {
      p.add(path, `expected "fd:N" with N 3 or more (0-2 are stdio), got ${describe(v)}`);
      return undefined;
    }
    const passed: PassedSocket = { kind: 'fd', fd };
    return Object.freeze({ host: '', port: 0, address: `fd:${fd}`, passed });
  }
  return hostPort(v, path, p, minPort);
}
