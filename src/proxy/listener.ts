import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import type { Clock } from '../clock.js';
import type { HostPort } from '../config/address.js';
import { ListenError } from '../errors.js';
import type { Logger } from '../logger.js';
import { noop } from '../noop.js';

export interface ListenerHost {
  /** Open sessions of this service, for the max_connections check. */
  readonly activeSessions: number;
  readonly cfg: { readonly maxConnections: number };
  /** A new client, paused, with an 'error' listener not yet attached. */
  accept(client: Socket): void;
  /** A client turned away at the limit. */
  refused(client: Socket): void;
}

const ERRNO_TEXT: Readonly<Record<string, string>> = {
  EADDRINUSE: 'address already in use',
  EACCES: 'permission denied',
  EADDRNOTAVAIL: 'address not available on this machine',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host lookup failed',
};

/** One service's listening socket: accept, enforce max_connections, hand off. */
export class Listener {
  private readonly server: Server;
  private lastAcceptErrorLog = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly listen: HostPort,
    private readonly host: ListenerHost,
    private readonly log: Logger,
    private readonly clock: Clock,
  ) {
    // pauseOnConnect: the client is not read until its backend is ready, so nothing is buffered meanwhile.
    this.server = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (c) =>
      this.onConnection(c),
    );
  }

  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        const why = (err.code && ERRNO_TEXT[err.code]) ?? err.message;
        reject(new ListenError(`listen ${this.listen.address}: ${why}`, err));
      };
      this.server.once('error', onError);
      this.server.listen({ host: this.listen.host, port: this.listen.port, backlog: 511 }, () => {
        this.server.removeListener('error', onError);
        // After bind, server errors come from accept (EMFILE, ENFILE): log, never crash.
        this.server.on('error', (err) => this.onAcceptError(err));
        resolve();
      });
    });
  }

  address(): AddressInfo {
    return this.server.address() as AddressInfo;
  }

  /** Stops accepting; open sessions are not touched (server.close() would wait for them all). */
  stop(): void {
    if (this.server.listening) this.server.close();
  }

  private onConnection(client: Socket): void {
    if (this.host.activeSessions >= this.host.cfg.maxConnections) {
      client.on('error', noop);
      this.host.refused(client);
      client.destroy();
      return;
    }
    this.host.accept(client);
  }

  private onAcceptError(err: Error): void {
    const now = this.clock.now();
    if (now - this.lastAcceptErrorLog < 1000) return;
    this.lastAcceptErrorLog = now;
    this.log.error({ err, listen: this.listen.address }, 'accept failed');
  }
}
