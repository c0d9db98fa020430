import { type HostPort, listensOverlap } from './address.js';
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

/**
 * The most ports one range may name ("host:7000-7255"): each is a listening
 * socket, so a descriptor, and a typo such as "1-65535" should not take 65,535.
 */
export const MAX_PORT_RANGE = 256;

/** "host:A-B" (or "[v6]:A-B"): a port range, as nginx's `listen` takes one. */
const PORT_RANGE = /^(.*):(\d{1,5})-(\d{1,5})$/;

/** True when `v` is written as a port range. */
export function isPortRange(v: unknown): boolean {
  return typeof v === 'string' && PORT_RANGE.test(v);
}

/** The addresses of a port range, each checked as a "host:port"; [] (and a problem) when it is not one. */
function portRange(
  v: string,
  path: string,
  p: Problems,
  minPort: number,
): ListenAddress[] | undefined {
  const m = PORT_RANGE.exec(v);
  if (!m) return undefined;
  const [, host, a, b] = m as unknown as [string, string, string, string];
  const first = Number(a);
  const last = Number(b);
  if (first < 1 || last > 65535 || first > last) {
    p.add(
      path,
      `expected a port range "host:FIRST-LAST" with 1 <= FIRST <= LAST <= 65535, got ${describe(v)}`,
    );
    return [];
  }
  if (last - first + 1 > MAX_PORT_RANGE) {
    p.add(
      path,
      `${last - first + 1} ports in ${describe(v)}: at most ${MAX_PORT_RANGE} in one range (each is a listening socket)`,
    );
    return [];
  }
  const out: ListenAddress[] = [];
  for (let port = first; port <= last; port++) {
    const one = hostPort(`${host}:${port}`, path, p, minPort);
    if (!one) return [];
    out.push(one);
  }
  return out;
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

/**
 * `listen = ["10.0.0.5:5432", "10.0.0.5:6432"]`: a service on several
 * addresses, each its own listener; an item may be a port range
 * ("10.0.0.5:7000-7010", at most MAX_PORT_RANGE ports), one listener a port. Addresses to bind only: a passed socket
 * is a service's one listen address. Two that would clash are refused.
 */
export function listenList(
  v: readonly unknown[],
  path: string,
  p: Problems,
  minPort: number,
): ListenAddress[] {
  if (v.length === 0) {
    p.add(path, 'empty: a service needs at least one listen address');
    return [];
  }
  const out: ListenAddress[] = [];
  v.forEach((x, i) => {
    if (typeof x === 'string' && (x.startsWith('systemd:') || x.startsWith('fd:'))) {
      p.add(
        `${path}[${i}]`,
        `a passed socket (${x}) cannot be one of several listen addresses: give it as the service's only listen`,
      );
      return;
    }
    const at = `${path}[${i}]`;
    const range = typeof x === 'string' ? portRange(x, at, p, minPort) : undefined;
    const one = range === undefined ? hostPort(x, at, p, minPort) : undefined;
    for (const a of range ?? (one ? [one] : [])) {
      const twin = out.find((o) => listensOverlap(o, a));
      if (twin) {
        p.add(at, `${a.address} overlaps ${twin.address}, listed before it`);
        return;
      }
      out.push(a);
    }
  });
  return out;
}
