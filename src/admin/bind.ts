import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import type { Server } from 'node:http';
import { connect } from 'node:net';
import { isLoopback } from '../config/address.js';
import { type AdminListen, isUnixListen, type UnixListen } from '../config/admin.js';
import { errnoText } from '../errno.js';
import { LbError } from '../errors.js';
import type { Logger } from '../logger.js';

/**
 * Binds the admin server: a TCP address (warned about when not loopback), a
 * descriptor passed to the process (an upgrade's, systemd's), or a Unix
 * socket created with its mode. After the bind, server errors are logged.
 */
export async function bindAdmin(
  server: Server,
  listen: AdminListen,
  fd: number | null,
  log: Logger,
): Promise<void> {
  if (isUnixListen(listen)) return bindUnix(server, listen, log);
  if (!isLoopback(listen.host)) {
    log.warn(
      { listen: listen.address },
      'admin server bound to a non-loopback address: anyone who can reach it can change backends',
    );
  }
  await listenOn(server, listen.address, log, () =>
    fd === null ? server.listen(listen.port, listen.host) : server.listen({ fd }),
  );
}

/**
 * Binds the socket file with its mode already in place (a umask for the
 * bind, so no other user can connect in between), after removing a stale
 * file that nothing listens on any more.
 */
async function bindUnix(server: Server, l: UnixListen, log: Logger): Promise<void> {
  if (await staleSocket(l.unix)) unlinkSync(l.unix);
  await listenOn(server, l.address, log, () => {
    const old = process.umask(0o777 & ~l.mode);
    try {
      server.listen(l.unix);
    } finally {
      process.umask(old);
    }
  });
  chmodSync(l.unix, l.mode);
}

function listenOn(server: Server, address: string, log: Logger, listen: () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new LbError('LB_ERR_LISTEN', `admin listen ${address}: ${errnoText(err)}`)),
    );
    server.once('listening', () => {
      server.removeAllListeners('error');
      server.on('error', (err) => log.error({ err }, 'admin server error'));
      resolve();
    });
    listen();
  });
}

/** True when `path` is a socket file nobody accepts on (a crashed run's); false when absent. */
function staleSocket(path: string): Promise<boolean> {
  try {
    if (!lstatSync(path).isSocket()) return Promise.resolve(false);
  } catch {
    return Promise.resolve(false);
  }
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}
