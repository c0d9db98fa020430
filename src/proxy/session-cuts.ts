import type { AccessList } from './access-list.js';
import type { Session, TerminationCause } from './session.js';

/*
 * What an operator (or a reload, or a backend's on_down) cuts among a service's
 * open sessions; OpenSessions holds the set and calls these.
 */

/** Ends the open sessions on one backend now; returns how many. */
export function endOn(
  open: Iterable<Session>,
  address: string,
  cause: TerminationCause = 'shutdown',
): number {
  let n = 0;
  for (const s of open) {
    if (s.target?.address === address || s.attempt?.lease?.backend.address === address) {
      s.destroy(cause);
      n++;
    }
  }
  return n;
}

/**
 * apply_to_open: ends the sessions whose client the allow/deny lists now
 * refuse. A session still reading its PROXY header is judged when it ends.
 */
export function endRefused(
  open: Iterable<Session>,
  access: AccessList | null,
  acceptProxy: boolean,
): number {
  if (access === null) return 0;
  let n = 0;
  for (const s of open) {
    if (s.cause !== null || (acceptProxy && s.attempt === null)) continue;
    if (!access.admits(s.clientIp)) {
      s.destroy('denied');
      n++;
    }
  }
  return n;
}

/** Ends one open session by its id, as an operator's disable would; false when it is not open. */
export function endOne(open: Iterable<Session>, id: number): boolean {
  for (const s of open) {
    if (s.id !== id) continue;
    s.destroy('admin');
    return true;
  }
  return false;
}
